-- Foundation: tenants, identities, API tokens and the event outbox.
-- Every table that holds customer data carries org_id; child tables reference
-- their parent through (org_id, id) so a row can never point into another org.

CREATE TABLE orgs (
    id         bigserial PRIMARY KEY,
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id         bigserial PRIMARY KEY,
    org_id     bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, id),
    UNIQUE (org_id, name)
);

-- A token is a credential with a role. Roles live on tokens, not users, so one
-- person can hold an admin token for the console and a read-only token for a
-- BI tool. Only the SHA-256 of the secret is stored.
CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id      bigint NOT NULL,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role         text NOT NULL CHECK (role IN ('admin', 'agent', 'restricted_agent', 'light_agent')),
    secret_hash  bytea NOT NULL UNIQUE,
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id) ON DELETE CASCADE
);

-- The outbox of the event stream. A row is written in the same transaction
-- as the change it describes; pg_notify carries only its id. Writers take a
-- per-org advisory lock before inserting (see store.InsertEvent), so within
-- one org ids become visible in commit order and "after id N" never skips.
CREATE TABLE events (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    type        text NOT NULL,
    permission  text NOT NULL,
    subject_id  text,
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_org_id_idx ON events (org_id, id);
