-- Permission profiles (SPEC C1-C3): what each desk role may see of the CRM.
-- One row per org and role, written when an admin first edits that role's
-- profile; a role without a row uses the documented defaults (auth package).
CREATE TABLE permission_profiles (
    org_id          bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('admin', 'agent', 'restricted_agent', 'light_agent')),
    crm_panels      boolean NOT NULL,             -- C1: show the CRM panels at all
    panel_record    text NOT NULL CHECK (panel_record IN ('CONTACT', 'ACCOUNT')),
    contact_info    text NOT NULL CHECK (contact_info IN ('NONE', 'READ', 'FULL')),
    deals           text NOT NULL CHECK (deals IN ('NONE', 'READ', 'FULL')),
    notes           text NOT NULL CHECK (notes IN ('NONE', 'READ', 'FULL')),
    calls           text NOT NULL CHECK (calls IN ('NONE', 'READ', 'FULL')),
    events          text NOT NULL CHECK (events IN ('NONE', 'READ', 'FULL')),
    tasks           text NOT NULL CHECK (tasks IN ('NONE', 'READ', 'FULL')),
    crm_tickets     boolean NOT NULL,             -- C2: tickets listed on CRM records
    ticket_actions  boolean NOT NULL,             -- C3: create and answer tickets from the CRM
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      bigint,
    PRIMARY KEY (org_id, role)
);
