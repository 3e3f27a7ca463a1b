-- Issue 22 (review): deleting an incident cascades to its rows of the change log
-- (incident_events.incident_id REFERENCES incidents ON DELETE CASCADE); without an index on
-- the referencing column each deleted incident scans the whole log, so replacing a seeded
-- chain (tens of thousands of incidents, each with a log row kept 7 days) went quadratic.
CREATE INDEX incident_events_incident ON incident_events (incident_id);
