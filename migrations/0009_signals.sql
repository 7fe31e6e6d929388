-- Signals (SPEC E4): per-user notifications about tickets, switchable per
-- kind and desk channel, delivered live and listable afterwards.

-- A user's switches. No row for a kind means on, every channel; scope says
-- whose tickets a user hears about: OWNED, the tickets of customers the
-- user owns in the CRM (the CRM owner's email is the user's), or ALL.
CREATE TABLE signal_settings (
    org_id   bigint NOT NULL,
    user_id  bigint NOT NULL,
    kind     text NOT NULL,
    enabled  boolean NOT NULL,
    channels text[] NOT NULL DEFAULT '{}',   -- empty: every channel
    PRIMARY KEY (user_id, kind),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE TABLE signal_scopes (
    org_id  bigint NOT NULL,
    user_id bigint NOT NULL PRIMARY KEY,
    scope   text NOT NULL CHECK (scope IN ('OWNED', 'ALL')),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);

-- One signal per user and cause: the event that caused it (or, for an
-- overdue ticket, the overdue mark), so a retried transaction or a
-- redelivered webhook never signals twice.
CREATE TABLE signals (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL,
    user_id     bigint NOT NULL,
    kind        text NOT NULL,
    ticket_ref  text NOT NULL,
    channel     text,
    title       text NOT NULL,
    cause       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz,
    UNIQUE (user_id, kind, cause),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX signals_by_user ON signals (user_id, id DESC);
CREATE INDEX signals_unread ON signals (user_id) WHERE read_at IS NULL;

-- Overdue detection marks each ticket once per due date, so the job that
-- finds them (once per cluster) never signals the same lapse twice.
CREATE TABLE overdue_marks (
    connection_id bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    ticket_ref    text NOT NULL,
    due_at        timestamptz NOT NULL,
    marked_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, ticket_ref, due_at)
);

-- Signal events go to one user.
ALTER TABLE events ADD COLUMN user_ref bigint;
