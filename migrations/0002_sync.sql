-- The sync engine's state (docs/SYNC.md): connections and their sealed
-- secrets, settings and field mappings, links and the mirror of upstream
-- records, the change queue, cursors, first-sync runs, history, failures and
-- conflict decisions. Every row carries org_id; children reference
-- connections through (org_id, id).

CREATE TABLE connections (
    id              bigserial PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    crm_system      text NOT NULL CHECK (crm_system IN ('zoho_crm', 'bigin')),
    status          text NOT NULL CHECK (status IN ('PENDING_APPROVAL', 'ACTIVE', 'PAUSED', 'INACTIVE', 'REMOVED')),
    auth_method     text NOT NULL CHECK (auth_method IN ('OAUTH', 'OTHER_USER', 'SERVICE_KEY')),
    crm_dc          text NOT NULL,
    crm_org_id      text,              -- null until the org is picked / approved
    crm_org_name    text,
    desk_dc         text NOT NULL,
    desk_org_id     text NOT NULL,
    desk_portal     text,
    language        text,
    time_zone       text,
    approver_email  text,              -- OTHER_USER: the CRM admin asked to approve (A2)
    requested_at    timestamptz,
    request_sent_count int NOT NULL DEFAULT 0,
    authorized_by   bigint,            -- user who connected or approved
    webhook_token   text NOT NULL,     -- verifies inbound notifications; random per connection
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id)
);
-- A CRM org joins at most one portal (A3), and an org has one live CRM connection.
CREATE UNIQUE INDEX connections_crm_org_live ON connections (crm_system, crm_dc, crm_org_id)
    WHERE status IN ('ACTIVE', 'PAUSED', 'PENDING_APPROVAL') AND crm_org_id IS NOT NULL;
CREATE UNIQUE INDEX connections_org_live ON connections (org_id)
    WHERE status IN ('ACTIVE', 'PAUSED', 'PENDING_APPROVAL');

-- Vendor secrets, sealed with store/crypt; never selected by anything that
-- answers a client.
CREATE TABLE connection_secrets (
    org_id        bigint NOT NULL,
    connection_id bigint NOT NULL,
    name          text NOT NULL,       -- crm_refresh_token, desk_refresh_token, service_key
    sealed        bytea NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, name),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE
);

-- Settings per module group, versioned: the row with the latest
-- effective_from at or before a change's capture time applies (B6).
CREATE TABLE sync_settings (
    id                     bigserial PRIMARY KEY,
    org_id                 bigint NOT NULL,
    connection_id          bigint NOT NULL,
    module_group           text NOT NULL CHECK (module_group IN ('CONTACTS_ACCOUNTS', 'PRODUCTS')),
    sync_type              text NOT NULL CHECK (sync_type IN ('TWO_WAY', 'ONE_WAY', 'NONE')),
    match_email            text NOT NULL DEFAULT 'PRIMARY' CHECK (match_email IN ('PRIMARY', 'SECONDARY')),
    crm_view_id            text,
    desk_department_id     text,
    crm_delete_policy      text NOT NULL DEFAULT 'NEVER' CHECK (crm_delete_policy IN ('ALWAYS', 'ONLY_IF_NO_RELATED', 'NEVER')),
    desk_delete_policy     text NOT NULL DEFAULT 'NEVER' CHECK (desk_delete_policy IN ('ALWAYS', 'NEVER')),
    first_sync_window_days int NOT NULL DEFAULT 365 CHECK (first_sync_window_days > 0),
    effective_from         timestamptz NOT NULL DEFAULT now(),
    created_by             bigint,
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE
);
CREATE INDEX sync_settings_current ON sync_settings (connection_id, module_group, effective_from DESC);

CREATE TABLE field_mappings (
    id            bigserial PRIMARY KEY,
    org_id        bigint NOT NULL,
    connection_id bigint NOT NULL,
    module        text NOT NULL CHECK (module IN ('contacts', 'accounts', 'products')),
    desk_field    text NOT NULL,
    crm_field     text NOT NULL,
    value_map     jsonb NOT NULL DEFAULT '{}'::jsonb, -- picklist: desk value -> CRM value
    standard      boolean NOT NULL DEFAULT false,     -- pre-mapped by deskbridge
    position      int NOT NULL DEFAULT 0,
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE,
    UNIQUE (connection_id, module, desk_field),
    UNIQUE (connection_id, module, crm_field)
);

-- One record on each side, linked. Unique per side: a record links once (B14).
CREATE TABLE links (
    id               bigserial PRIMARY KEY,
    org_id           bigint NOT NULL,
    connection_id    bigint NOT NULL,
    module           text NOT NULL,
    desk_id          text NOT NULL,
    crm_id           text NOT NULL,
    desk_values      jsonb NOT NULL DEFAULT '{}'::jsonb, -- mapped values last synced, desk field names
    crm_values       jsonb NOT NULL DEFAULT '{}'::jsonb, -- the same, CRM field names
    desk_modified_at timestamptz,
    crm_modified_at  timestamptz,
    synced_at        timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE,
    UNIQUE (connection_id, module, desk_id),
    UNIQUE (connection_id, module, crm_id)
);

-- The latest copy of every upstream record a connection sees, for queries.
CREATE TABLE mirror_records (
    org_id        bigint NOT NULL,
    connection_id bigint NOT NULL,
    system        text NOT NULL,       -- zoho_crm, bigin, zoho_desk, zoho_salesiq
    module        text NOT NULL,
    ext_id        text NOT NULL,
    fields        jsonb NOT NULL,
    email         text,                -- lower-cased, for matching and lookups
    name          text,
    created_at    timestamptz,
    modified_at   timestamptz,
    deleted_at    timestamptz,
    mirrored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, system, module, ext_id),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE
);
CREATE INDEX mirror_records_email ON mirror_records (connection_id, system, module, email) WHERE email IS NOT NULL;
CREATE INDEX mirror_records_name ON mirror_records (connection_id, system, module, lower(name));
CREATE INDEX mirror_records_org_modified ON mirror_records (org_id, module, modified_at);

-- One row per record that needs applying. Capture bumps version; a worker
-- removes the row only if version did not move while it worked.
CREATE TABLE change_queue (
    id            bigserial PRIMARY KEY,
    org_id        bigint NOT NULL,
    connection_id bigint NOT NULL,
    system        text NOT NULL,       -- the side the change happened on
    module        text NOT NULL,
    ext_id        text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('UPSERT', 'DELETE')),
    origin        text NOT NULL CHECK (origin IN ('WEBHOOK', 'POLL', 'DELETED_FEED', 'FIRST_SYNC', 'RETRY')),
    version       bigint NOT NULL DEFAULT 1,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    available_at  timestamptz NOT NULL DEFAULT now(),
    attempts      int NOT NULL DEFAULT 0,
    last_error    text,
    leased_by     text,
    lease_until   timestamptz,
    run_id        bigint,              -- the first-sync run that enqueued it, for progress
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE,
    UNIQUE (connection_id, system, module, ext_id)
);
CREATE INDEX change_queue_due ON change_queue (connection_id, available_at);
-- Claims across connections take the oldest due rows first; without this
-- index every claim would sort the whole queue (a first sync holds millions).
CREATE INDEX change_queue_claim ON change_queue (available_at, id);

-- Where polling and first-sync walks stand, per system and module.
CREATE TABLE sync_cursors (
    org_id        bigint NOT NULL,
    connection_id bigint NOT NULL,
    system        text NOT NULL,
    module        text NOT NULL,
    purpose       text NOT NULL CHECK (purpose IN ('POLL', 'DELETED_FEED')),
    cursor        text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, system, module, purpose),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE
);

-- First-sync runs (B7): at most one RUNNING per connection, module and
-- direction, with the walk's checkpoint and progress. Finished and cancelled
-- runs stay as history, and a later run (a new list view, a restart after
-- cancelling) may start beside them.
CREATE TABLE sync_runs (
    id            bigserial PRIMARY KEY,
    org_id        bigint NOT NULL,
    connection_id bigint NOT NULL,
    module        text NOT NULL,
    direction     text NOT NULL CHECK (direction IN ('CRM_TO_DESK', 'DESK_TO_CRM')),
    status        text NOT NULL CHECK (status IN ('RUNNING', 'DONE', 'CANCELLED')),
    since         timestamptz NOT NULL,   -- only records created after this
    checkpoint    text NOT NULL DEFAULT '',
    walk_done     boolean NOT NULL DEFAULT false,
    total         bigint NOT NULL DEFAULT 0,
    enqueued      bigint NOT NULL DEFAULT 0,
    done          bigint NOT NULL DEFAULT 0,
    added         bigint NOT NULL DEFAULT 0,
    updated       bigint NOT NULL DEFAULT 0,
    failed        bigint NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX sync_runs_one_running ON sync_runs (connection_id, module, direction)
    WHERE status = 'RUNNING';

-- Sync history (B13): counters per hour.
CREATE TABLE sync_history (
    org_id        bigint NOT NULL,
    connection_id bigint NOT NULL,
    bucket        timestamptz NOT NULL,   -- the hour
    module        text NOT NULL,
    direction     text NOT NULL CHECK (direction IN ('CRM_TO_DESK', 'DESK_TO_CRM')),
    added         bigint NOT NULL DEFAULT 0,
    updated       bigint NOT NULL DEFAULT 0,
    deleted       bigint NOT NULL DEFAULT 0,
    failed        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (connection_id, bucket, module, direction),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE
);

-- Failure history (B14), in time order, with a retry action.
CREATE TABLE sync_failures (
    id            bigserial PRIMARY KEY,
    org_id        bigint NOT NULL,
    connection_id bigint NOT NULL,
    module        text NOT NULL,
    direction     text NOT NULL CHECK (direction IN ('CRM_TO_DESK', 'DESK_TO_CRM')),
    source_system text NOT NULL,
    source_id     text NOT NULL,
    target_id     text,
    reason        text NOT NULL,   -- connector.Reason, or rate_limited / auth / upstream_unavailable / outcome_unknown
    fields        text[] NOT NULL DEFAULT '{}',
    message       text NOT NULL,
    vendor_code   text,
    raw_error     bytea,
    attempts      int NOT NULL DEFAULT 1,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    retried_at    timestamptz,
    resolved_at   timestamptz,
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE
);
CREATE INDEX sync_failures_open ON sync_failures (connection_id, module, occurred_at) WHERE resolved_at IS NULL;
CREATE UNIQUE INDEX sync_failures_one_open ON sync_failures (connection_id, source_system, module, source_id) WHERE resolved_at IS NULL;

-- Field-level conflict decisions, visible to admins (docs/SYNC.md).
CREATE TABLE sync_conflicts (
    id               bigserial PRIMARY KEY,
    org_id           bigint NOT NULL,
    connection_id    bigint NOT NULL,
    link_id          bigint REFERENCES links (id) ON DELETE SET NULL, -- history outlives an unlink
    module           text NOT NULL,
    desk_field       text NOT NULL,
    crm_field        text NOT NULL,
    desk_value       jsonb,
    crm_value        jsonb,
    desk_modified_at timestamptz,
    crm_modified_at  timestamptz,
    winner           text NOT NULL CHECK (winner IN ('DESK', 'CRM')),
    decided_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE
);
CREATE INDEX sync_conflicts_recent ON sync_conflicts (connection_id, decided_at DESC);
