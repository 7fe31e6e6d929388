-- Ticket work from the CRM side (SPEC E1-E3) and the typed event streams
-- (G2).
--
-- A ticket action sends an email or makes a ticket in the desk, which
-- cannot be taken back, so a client's retry must not do it twice: the
-- client names each action with a key, and the key's row says whether the
-- action is under way, done (with the answer to give again), or ended with
-- an unknown outcome (the desk may or may not have acted; it is never sent
-- again blindly).
CREATE TABLE idempotency_keys (
    org_id       bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    key          text NOT NULL,
    operation    text NOT NULL,
    request_hash bytea NOT NULL,
    state        text NOT NULL CHECK (state IN ('pending', 'done', 'unknown')),
    result       jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

-- What subscribers filter ticket and sync events on, beside the payload,
-- so a resuming subscriber's catch-up is one indexed read with the same
-- conditions the live dispatch applies.
ALTER TABLE events
    ADD COLUMN ticket_ref     text,
    ADD COLUMN contact_ref    text,
    ADD COLUMN account_ref    text,
    ADD COLUMN department_ref text,
    ADD COLUMN connection_ref bigint;
