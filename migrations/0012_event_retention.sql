-- Event retention (docs/ARCHITECTURE.md, "The event stream"): the outbox is
-- pruned after DESKBRIDGE_EVENT_RETENTION. Per org, the highest event id
-- pruned so far, so a reader resuming from an older position is told that
-- events it has not seen are gone (EVENTS_EXPIRED) instead of silently
-- skipping them.
CREATE TABLE event_horizons (
    org_id         bigint PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    pruned_through bigint NOT NULL
);
