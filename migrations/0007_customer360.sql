-- Customer 360 (SPEC C, D, G3) reads the mirror. Besides the synced
-- contacts, accounts and products, the mirror now also holds records kept
-- only to be read: CRM leads, deals, notes, calls, events and tasks, and
-- desk tickets. The columns below are lifted from each record's fields when
-- it is mirrored (syncengine.describeRecord), so the sidebar's lists are
-- index scans and its counts are aggregates in SQL.
ALTER TABLE mirror_records
    ADD COLUMN id            bigserial,      -- for global ids and stable BI cursors
    ADD COLUMN title         text,
    ADD COLUMN contact_ref   text,           -- ext id of the related contact (same system)
    ADD COLUMN account_ref   text,
    ADD COLUMN deal_ref      text,
    ADD COLUMN lead_ref      text,
    ADD COLUMN status        text,
    ADD COLUMN status_type   text,
    ADD COLUMN owner_id      text,
    ADD COLUMN owner_name    text,
    ADD COLUMN department_id text,
    ADD COLUMN amount        numeric,
    ADD COLUMN at            timestamptz,    -- closing date, start, due date
    ADD COLUMN closed        boolean;
CREATE UNIQUE INDEX mirror_records_id ON mirror_records (id);
-- The sidebar's lists: a contact's or account's records of one module,
-- newest first.
CREATE INDEX mirror_records_by_contact ON mirror_records (connection_id, system, module, contact_ref, created_at DESC)
    WHERE contact_ref IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX mirror_records_by_account ON mirror_records (connection_id, system, module, account_ref, created_at DESC)
    WHERE account_ref IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX mirror_records_by_deal ON mirror_records (connection_id, system, module, deal_ref)
    WHERE deal_ref IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX mirror_records_by_lead ON mirror_records (connection_id, system, module, lead_ref)
    WHERE lead_ref IS NOT NULL AND deleted_at IS NULL;
-- BI reads: a module in full, or what changed since a time, in id order.
CREATE INDEX mirror_records_bi ON mirror_records (org_id, system, module, id);
CREATE INDEX mirror_records_bi_since ON mirror_records (org_id, system, module, mirrored_at, id);
