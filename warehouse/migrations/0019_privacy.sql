-- Issue 20: privacy and evidence. A store's privacy settings (retention of its evidence in
-- days, heads blurred), privacy zones, what retention removed from an incident's evidence,
-- legal holds, the append-only evidence access log, the disclosure register and subject
-- access requests.
ALTER TABLE stores ADD COLUMN privacy jsonb NOT NULL DEFAULT '{}'::jsonb;

ALTER TABLE zones DROP CONSTRAINT zones_kind_check;
ALTER TABLE zones ADD CONSTRAINT zones_kind_check CHECK (kind IN
    ('entrance', 'exit', 'checkout', 'high_value', 'restricted', 'general', 'privacy'));

-- When retention (or an erasure) deleted the incident's snapshot / clip files; the snapshot
-- reference is cleared with its file.
ALTER TABLE incidents ADD COLUMN snapshot_purged_at timestamptz;
ALTER TABLE incidents ADD COLUMN clip_purged_at timestamptz;

-- A legal hold keeps an incident's evidence past retention until it is released.
CREATE TABLE legal_holds (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id     text NOT NULL,
    held_by         text NOT NULL,
    held_at         timestamptz NOT NULL DEFAULT now(),
    reason          text NOT NULL CHECK (btrim(reason) <> ''),
    released_by     text,
    released_at     timestamptz,
    release_reason  text
);
CREATE UNIQUE INDEX legal_holds_one_active ON legal_holds (incident_id) WHERE released_at IS NULL;

-- Every view, download, reveal and export of evidence, and every purge, hold, release and
-- erasure: append-only. Rows are never changed; they are deleted only by the log's own
-- retention, which says so in its transaction (SET LOCAL shrinkwatch.evidence_access_retention).
CREATE TABLE evidence_access (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    username    text NOT NULL,
    action      text NOT NULL CHECK (action IN
                    ('view', 'download', 'reveal', 'export', 'access_request', 'erase',
                     'hold', 'release', 'purge')),
    store_id    text,
    camera_id   text,
    incident_id text,
    client      text,
    reason      text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX evidence_access_at ON evidence_access (at DESC);
CREATE INDEX evidence_access_incident ON evidence_access (incident_id, at DESC);

CREATE FUNCTION evidence_access_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('shrinkwatch.evidence_access_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'evidence_access is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER evidence_access_append_only BEFORE UPDATE OR DELETE ON evidence_access
    FOR EACH ROW EXECUTE FUNCTION evidence_access_append_only();
CREATE TRIGGER evidence_access_no_truncate BEFORE TRUNCATE ON evidence_access
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_access_append_only();

-- The disclosure register: each case file or access-request export handed to someone.
CREATE TABLE disclosures (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    kind          text NOT NULL CHECK (kind IN ('case', 'access_request')),
    disclosed_by  text NOT NULL,
    recipient     text NOT NULL CHECK (btrim(recipient) <> ''),
    reason        text NOT NULL CHECK (btrim(reason) <> ''),
    incident_ids  text[] NOT NULL DEFAULT '{}',
    store_ids     text[] NOT NULL DEFAULT '{}',
    file_name     text NOT NULL,
    sha256        text NOT NULL,
    request_id    bigint
);
CREATE INDEX disclosures_at ON disclosures (at DESC);

-- Subject access requests: answered within a month of the day they were received.
CREATE TABLE access_requests (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_on   date NOT NULL,
    due_on        date NOT NULL,
    requester     text NOT NULL CHECK (btrim(requester) <> ''),
    description   text NOT NULL DEFAULT '',
    store_id      text NOT NULL,
    camera_id     text NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL CHECK (window_end > window_start),
    recorded_by   text NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    answered_at   timestamptz,
    answered_by   text
);
CREATE INDEX access_requests_due ON access_requests (due_on) WHERE answered_at IS NULL;
