-- The evidence access log's own retention may delete only rows older than a floor (90 days).
-- The switch its transaction sets (SET LOCAL shrinkwatch.evidence_access_retention) can be
-- set by any session, so on its own it opened the whole table to DELETE: a session could
-- empty the log. Now a row younger than the floor is refused whatever the switch says, and
-- the settings keep retention_evidence_access_days at 90 or more to match.
CREATE OR REPLACE FUNCTION evidence_access_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('shrinkwatch.evidence_access_retention', true) = 'on' THEN
        IF OLD.at < now() - interval '90 days' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'evidence_access is append-only (DELETE refused: a row is kept at least 90 days)';
    END IF;
    RAISE EXCEPTION 'evidence_access is append-only (% refused)', TG_OP;
END $$;
