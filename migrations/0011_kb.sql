-- Knowledge-base sync desk -> chat (SPEC F2, G4; docs/KB.md): per
-- connection, the SalesIQ portal it writes to, which desk categories sync
-- into which chat department, the schedule (next_run_at, claimed by the
-- cluster leader), the runs with their counters, the failures, and one link
-- per synced article with the hash of what was last written.

CREATE TABLE kb_sync_settings (
    org_id          bigint NOT NULL,
    connection_id   bigint PRIMARY KEY,
    salesiq_dc      text NOT NULL,
    salesiq_screen  text NOT NULL,           -- the SalesIQ portal's screen name
    permission      text NOT NULL CHECK (permission IN ('ALL', 'REGISTERED', 'BOTH')),
    article_status  text NOT NULL CHECK (article_status IN ('PUBLISHED', 'DRAFT')),
    sync_interval   text NOT NULL CHECK (sync_interval IN ('DAILY', 'WEEKLY', 'MONTHLY')),
    time_zone       text NOT NULL,           -- IANA name; runs happen early morning there
    enabled         boolean NOT NULL,
    first_sync_at   timestamptz,             -- start of the first run ever: WEEKLY/MONTHLY follow it
    next_run_at     timestamptz,             -- the next scheduled run; null while disabled
    updated_by      bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE,
    CHECK (enabled OR next_run_at IS NULL)
);
CREATE INDEX kb_sync_settings_due ON kb_sync_settings (next_run_at) WHERE enabled;

-- Which desk categories sync into which chat department. The primary key
-- is the rule that a category belongs to at most one department.
CREATE TABLE kb_sync_categories (
    org_id             bigint NOT NULL,
    connection_id      bigint NOT NULL REFERENCES kb_sync_settings (connection_id) ON DELETE CASCADE,
    desk_category_id   text NOT NULL,
    chat_department_id text NOT NULL,
    position           int NOT NULL DEFAULT 0,
    PRIMARY KEY (connection_id, desk_category_id)
);

-- The SalesIQ category each synced desk category's articles go into.
CREATE TABLE kb_category_links (
    org_id              bigint NOT NULL,
    connection_id       bigint NOT NULL REFERENCES kb_sync_settings (connection_id) ON DELETE CASCADE,
    desk_category_id    text NOT NULL,
    salesiq_category_id text NOT NULL,
    name                text NOT NULL,
    PRIMARY KEY (connection_id, desk_category_id)
);

-- One synced desk article and its SalesIQ copy. salesiq_article_id is null
-- between the moment a create is about to be sent and the moment its answer
-- is stored: a run that finds such a row (after a crash) looks the copy up
-- by its source id instead of creating it again.
CREATE TABLE kb_article_links (
    org_id              bigint NOT NULL,
    connection_id       bigint NOT NULL REFERENCES kb_sync_settings (connection_id) ON DELETE CASCADE,
    desk_article_id     text NOT NULL,
    salesiq_article_id  text,
    desk_category_id    text NOT NULL,
    chat_department_id  text NOT NULL,
    salesiq_category_id text NOT NULL,
    status              text NOT NULL,       -- published | draft, as written
    content_hash        bytea,               -- SHA-256 of everything last written
    desk_modified_at    timestamptz,
    seen_run            bigint,              -- the last run that found the article in scope
    synced_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, desk_article_id)
);
CREATE UNIQUE INDEX kb_article_links_salesiq ON kb_article_links (connection_id, salesiq_article_id)
    WHERE salesiq_article_id IS NOT NULL;

-- Runs: scheduled, "sync now" and retries. At most one queued or running
-- run per connection, and one run per scheduled slot, whatever the number
-- of replicas or leaders.
CREATE TABLE kb_sync_runs (
    id            bigserial PRIMARY KEY,
    org_id        bigint NOT NULL,
    connection_id bigint NOT NULL REFERENCES kb_sync_settings (connection_id) ON DELETE CASCADE,
    trigger       text NOT NULL CHECK (trigger IN ('SCHEDULED', 'MANUAL', 'RETRY')),
    status        text NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'DONE', 'FAILED', 'CANCELLED')),
    scheduled_for timestamptz,             -- SCHEDULED: the slot it serves
    article_ids   text[],                  -- RETRY: the desk articles to sync again
    listed        int NOT NULL DEFAULT 0,  -- desk articles looked at
    added         int NOT NULL DEFAULT 0,
    updated       int NOT NULL DEFAULT 0,
    deleted       int NOT NULL DEFAULT 0,
    unchanged     int NOT NULL DEFAULT 0,
    failed        int NOT NULL DEFAULT 0,
    error         text,
    attempts      int NOT NULL DEFAULT 0,  -- starts; a run whose replica died is started again
    runner        text,
    created_by    bigint,
    created_at    timestamptz NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz,
    heartbeat_at  timestamptz              -- database time; a stale one means the runner died
);
CREATE UNIQUE INDEX kb_sync_runs_active ON kb_sync_runs (connection_id) WHERE status IN ('QUEUED', 'RUNNING');
CREATE UNIQUE INDEX kb_sync_runs_slot ON kb_sync_runs (connection_id, scheduled_for) WHERE trigger = 'SCHEDULED';
CREATE INDEX kb_sync_runs_list ON kb_sync_runs (connection_id, id DESC);
CREATE INDEX kb_sync_runs_queued ON kb_sync_runs (id) WHERE status = 'QUEUED';

-- Articles that could not be synced; one open line per article.
CREATE TABLE kb_sync_failures (
    id                 bigserial PRIMARY KEY,
    org_id             bigint NOT NULL,
    connection_id      bigint NOT NULL REFERENCES kb_sync_settings (connection_id) ON DELETE CASCADE,
    desk_article_id    text NOT NULL,
    salesiq_article_id text,
    title              text,
    operation          text NOT NULL CHECK (operation IN ('CREATE', 'UPDATE', 'DELETE', 'READ')),
    reason             text NOT NULL,
    message            text NOT NULL,
    vendor_code        text,
    attempts           int NOT NULL DEFAULT 1,
    run_id             bigint,
    occurred_at        timestamptz NOT NULL DEFAULT now(),
    retried_at         timestamptz,
    resolved_at        timestamptz
);
CREATE UNIQUE INDEX kb_sync_failures_open ON kb_sync_failures (connection_id, desk_article_id) WHERE resolved_at IS NULL;
CREATE INDEX kb_sync_failures_list ON kb_sync_failures (connection_id, occurred_at, id);
