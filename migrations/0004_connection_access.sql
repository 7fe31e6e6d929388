-- Access requests to another user's CRM account (A2) and service-key
-- connections (A3).
--
-- An access request is approved through a link that carries a random token;
-- only its SHA-256 is kept, so a database reader cannot approve anything.
-- Re-sending replaces the token (the old link stops working) and restarts
-- the expiry.
ALTER TABLE connections
    ADD COLUMN request_token_hash bytea,
    ADD COLUMN request_expires_at timestamptz,
    -- A3: the desk portal admin whose service key the connection uses.
    ADD COLUMN service_key_email text;
CREATE UNIQUE INDEX connections_request_token ON connections (request_token_hash)
    WHERE request_token_hash IS NOT NULL;
