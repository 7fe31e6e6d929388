-- Chat (SalesIQ) linked to the org's desk portal: the link (SPEC A5), the
-- department mapping (F3), the conversations seen (F1, F8) and the tickets
-- made from them (F1, F4, F6). docs/CHAT.md has the design.

-- One live link per org, joined to the connection whose desk portal it
-- serves. The account's refresh token (one Zoho account, reaching SalesIQ
-- and the desk) is sealed like a connection's secrets and deleted when the
-- link is removed.
CREATE TABLE chat_links (
    id              bigserial PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    connection_id   bigint NOT NULL,
    status          text NOT NULL CHECK (status IN ('ACTIVE', 'DISABLED', 'RELINK_REQUIRED', 'REMOVED')),
    relink_reason   text,
    data_center     text NOT NULL,
    screen_name     text NOT NULL,     -- the SalesIQ portal
    portal_name     text,
    desk_org_id     text NOT NULL,     -- the desk portal it was linked to
    desk_portal     text,
    desk_user_id    text NOT NULL,     -- the desk user the account is (A5)
    desk_user_name  text,
    account_email   text NOT NULL,     -- the same on both products
    linked_by       bigint,            -- the deskbridge user who linked or last re-linked
    sealed_token    bytea,             -- null once removed
    webhook_token   text NOT NULL,     -- random; deliveries must carry it
    webhook_id      text,              -- the SalesIQ subscription
    webhook_key     text,              -- its public key (PEM), to verify signatures after a restart
    webhook_url     text,
    convert_chats   text NOT NULL DEFAULT 'NONE' CHECK (convert_chats IN ('ALL', 'ATTENDED', 'MISSED', 'NONE')),
    convert_at      text NOT NULL DEFAULT 'CHAT_END' CHECK (convert_at IN ('PICKUP', 'CHAT_END')),
    ticket_status   text NOT NULL DEFAULT 'OPEN' CHECK (ticket_status IN ('OPEN', 'CLOSED')),
    fallback_department_id text,       -- automatic conversion of CHOOSE_EACH_TIME departments
    checked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX chat_links_org_live ON chat_links (org_id) WHERE status <> 'REMOVED';
CREATE UNIQUE INDEX chat_links_portal_live ON chat_links (data_center, screen_name) WHERE status <> 'REMOVED';

-- Per chat department: a desk department, or one of the three standard
-- settings. automatic marks a same-name mapping the gateway made; undoing
-- it gives CHOOSE_EACH_TIME.
CREATE TABLE chat_department_mappings (
    org_id               bigint NOT NULL,
    link_id              bigint NOT NULL,
    chat_department_id   text NOT NULL,
    chat_department_name text NOT NULL,
    mode                 text NOT NULL CHECK (mode IN ('DESK_DEPARTMENT', 'NO_INTEGRATION', 'VIEW_ONLY', 'CHOOSE_EACH_TIME')),
    desk_department_id   text,
    desk_department_name text,
    automatic            boolean NOT NULL DEFAULT false,
    updated_by           bigint,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (link_id, chat_department_id),
    FOREIGN KEY (org_id, link_id) REFERENCES chat_links (org_id, id) ON DELETE CASCADE,
    CHECK ((mode = 'DESK_DEPARTMENT') = (desk_department_id IS NOT NULL)),
    CHECK (NOT automatic OR mode = 'DESK_DEPARTMENT')
);

-- The conversations the chat tool told us about, as last seen, and why the
-- automatic rule made no ticket of one (no email, a department that is not
-- mapped...).
CREATE TABLE chat_conversations (
    org_id          bigint NOT NULL,
    link_id         bigint NOT NULL,
    conversation_id text NOT NULL,
    department_id   text,
    visitor_id      text,
    visitor_name    text,
    visitor_email   text,
    visitor_phone   text,
    state           text,
    question        text,
    auto_outcome    text,
    seen_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, conversation_id),
    FOREIGN KEY (org_id, link_id) REFERENCES chat_links (org_id, id) ON DELETE CASCADE
);
CREATE INDEX chat_conversations_visitor ON chat_conversations (org_id, visitor_id);

-- A chat makes at most one ticket: this row is claimed before the desk is
-- called and finished (DONE, with the ticket) in the transaction that
-- records the ticket. A create that failed for a while (RETRY) is tried
-- again by the leader; one whose answer was lost (UNKNOWN) is looked for in
-- the desk by its chat id before anything is sent again.
CREATE TABLE chat_tickets (
    org_id              bigint NOT NULL,
    link_id             bigint NOT NULL,
    conversation_id     text NOT NULL,
    state               text NOT NULL CHECK (state IN ('PENDING', 'RETRY', 'UNKNOWN', 'DONE')),
    origin              text NOT NULL CHECK (origin IN ('AUTOMATIC', 'MANUAL', 'ATTACHED')),
    ticket_id           text,
    request             jsonb NOT NULL DEFAULT '{}',
    attempts            int NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz,
    last_error          text,
    transcript_complete boolean NOT NULL DEFAULT false,
    created_by          bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, conversation_id),
    FOREIGN KEY (org_id, link_id) REFERENCES chat_links (org_id, id) ON DELETE CASCADE,
    CHECK ((state = 'DONE') = (ticket_id IS NOT NULL))
);
CREATE INDEX chat_tickets_due ON chat_tickets (next_attempt_at) WHERE state <> 'DONE';
CREATE INDEX chat_tickets_by_ticket ON chat_tickets (org_id, ticket_id) WHERE ticket_id IS NOT NULL;
