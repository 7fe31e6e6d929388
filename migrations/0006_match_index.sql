-- The first sync's match index (docs/SYNC.md, "First sync"): before a run
-- queues anything, the leader reads the whole target module into
-- mirror_records, so matching (B8) asks PostgreSQL once per batch instead of
-- the vendor's search once per record. A row says how far that read got:
-- complete once it reached the end, caught_up_at when a read last did (a
-- later run reads what changed since from the cursor before it starts).
CREATE TABLE match_indexes (
    org_id        bigint NOT NULL,
    connection_id bigint NOT NULL,
    system        text NOT NULL,       -- the target side: zoho_desk, zoho_crm, bigin
    module        text NOT NULL,       -- contacts, accounts, products
    cursor        text NOT NULL,       -- the connector's ListChanged cursor
    complete      boolean NOT NULL DEFAULT false,
    caught_up_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, system, module),
    FOREIGN KEY (org_id, connection_id) REFERENCES connections (org_id, id) ON DELETE CASCADE
);
