-- Change-notification subscriptions the gateway holds at the vendors for a
-- connection (CRM watch channels, Desk webhooks), so the leader can renew
-- them before they expire and remove them with the connection.
CREATE TABLE connection_watches (
    org_id          bigint NOT NULL,
    connection_id   bigint NOT NULL,
    system          text NOT NULL,        -- zoho_crm, bigin, zoho_desk
    subscription_id text NOT NULL,
    target_url      text NOT NULL,        -- where the vendor posts (without the token)
    expires_at      timestamptz,          -- null: does not expire
    created_at      timestamptz NOT NULL DEFAULT now(),
    renewed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, system),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE
);
