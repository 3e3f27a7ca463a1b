-- Core tables of CONTRACTS §4: the site configuration and incidents.

CREATE TABLE stores (
    id                  text PRIMARY KEY,
    name                text NOT NULL,
    city                text,
    timezone            text NOT NULL,
    hours               jsonb NOT NULL DEFAULT '{}'::jsonb,
    subscription_active boolean NOT NULL DEFAULT true,
    economics           jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cameras (
    id          text PRIMARY KEY,
    store_id    text NOT NULL REFERENCES stores (id),
    name        text NOT NULL,
    location    text,
    stream_url  text NOT NULL,
    fps         real NOT NULL DEFAULT 5 CHECK (fps > 0),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cameras_store ON cameras (store_id);

CREATE TABLE zones (
    camera_id   text NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    id          text NOT NULL,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN
                    ('entrance', 'exit', 'checkout', 'high_value', 'restricted', 'general')),
    polygon     jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (camera_id, id)
);

CREATE TABLE incidents (
    incident_id     text PRIMARY KEY,
    version         integer NOT NULL CHECK (version >= 1),
    store_id        text NOT NULL,
    camera_id       text NOT NULL,
    track_id        bigint,
    incident_type   text NOT NULL,
    risk_score      double precision NOT NULL,
    risk_level      text NOT NULL CHECK (risk_level IN ('low', 'medium', 'high')),
    status          text NOT NULL CHECK (status IN ('open', 'closed')),
    started_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    zone_ids        text[] NOT NULL DEFAULT '{}',
    signals         jsonb NOT NULL DEFAULT '[]'::jsonb,
    snapshot        text,
    user_confirmed  boolean,
    reviewed_by     text,
    reviewed_at     timestamptz,
    review_note     text,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_written_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_store_started ON incidents (store_id, started_at DESC);
CREATE INDEX incidents_camera_started ON incidents (camera_id, started_at DESC);
