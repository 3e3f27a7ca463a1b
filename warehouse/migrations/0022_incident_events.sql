-- Issue 22: the change log behind the API's live incidents (GET /v1/events; owner:
-- warehouse/incident_events.py, whose docstring says why the cursor is (xid, seq)). PostgreSQL
-- writes it itself, in the transaction that changes the incident, so no writer can forget it:
-- a new incident, a new version (the flow's upsert) or a verdict is one row, with the incident
-- as that change left it, the writing transaction's id and a sequence number. pg_notify wakes
-- the API's listener when that transaction commits (notifications of one transaction with the
-- same payload are sent once).
CREATE TABLE incident_events (
    seq          bigserial PRIMARY KEY,
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),  -- the top-level transaction's id
    incident_id  text NOT NULL REFERENCES incidents ON DELETE CASCADE,
    version      integer NOT NULL,
    store_id     text NOT NULL,
    state        jsonb NOT NULL,                               -- the incidents row after the change
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_events_position ON incident_events (xid, seq);
CREATE INDEX incident_events_created ON incident_events (created_at);

-- Where retention has deleted the log up to (inclusive): a stream resumed from before it has
-- missed changes, and is told so.
CREATE TABLE incident_events_purged (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    xid        xid8 NOT NULL,
    seq        bigint NOT NULL,
    purged_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION incident_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_events (incident_id, version, store_id, state)
    VALUES (NEW.incident_id, NEW.version, NEW.store_id, to_jsonb(NEW));
    PERFORM pg_notify('incident_events', NEW.store_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER incidents_event_insert AFTER INSERT ON incidents
    FOR EACH ROW EXECUTE FUNCTION incident_event();
-- Only a change the API shows: a new version or a verdict (not a retention mark, not the
-- flow's bookkeeping columns).
CREATE TRIGGER incidents_event_update AFTER UPDATE ON incidents
    FOR EACH ROW
    WHEN ((OLD.version, OLD.store_id, OLD.user_confirmed, OLD.reviewed_by, OLD.reviewed_at, OLD.review_note)
          IS DISTINCT FROM
          (NEW.version, NEW.store_id, NEW.user_confirmed, NEW.reviewed_by, NEW.reviewed_at, NEW.review_note))
    EXECUTE FUNCTION incident_event();
