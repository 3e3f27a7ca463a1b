-- Keyset paging of incident lists, newest first, across the stores of a scope
-- (warehouse/queries.py): (started_at, incident_id) descending.
CREATE INDEX incidents_started_id ON incidents (started_at DESC, incident_id DESC);
