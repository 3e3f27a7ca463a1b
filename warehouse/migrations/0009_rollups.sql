-- Rollups behind the analytics (warehouse/rollups.py): computed by DuckDB from the base
-- tables, written here in one transaction per refresh, so readers see the old rows or the
-- new ones, never a half-written refresh, and are never blocked by it.

CREATE TABLE rollup_state (
    name          text PRIMARY KEY,
    watermark     timestamptz NOT NULL,        -- base-table changes up to here are in the rollup
    refreshed_at  timestamptz NOT NULL DEFAULT now(),
    rows_written  integer NOT NULL
);

-- Incidents by type, store-local day and hour: the weekday x hour risk pattern.
CREATE TABLE rollup_risk_pattern (
    store_id      text NOT NULL,
    local_day     date NOT NULL,
    weekday       smallint NOT NULL,           -- 0 = Monday
    local_hour    smallint NOT NULL,
    incident_type text NOT NULL,
    incidents     integer NOT NULL,
    high          integer NOT NULL,
    confirmed     integer NOT NULL,
    rejected      integer NOT NULL,
    PRIMARY KEY (store_id, local_day, local_hour, incident_type)
);

-- Footfall and dwell per camera zone and hour (from occupancy_minutes).
CREATE TABLE rollup_footfall_hourly (
    store_id        text NOT NULL,
    camera_id       text NOT NULL,
    zone_id         text NOT NULL,
    hour            timestamptz NOT NULL,
    local_day       date NOT NULL,
    local_hour      smallint NOT NULL,
    visitor_minutes integer NOT NULL,          -- distinct people per minute, summed
    person_minutes  double precision NOT NULL, -- people present x minutes (dwell)
    people_peak     integer NOT NULL,
    frames          integer NOT NULL,
    PRIMARY KEY (camera_id, zone_id, hour)
);
CREATE INDEX rollup_footfall_store_day ON rollup_footfall_hourly (store_id, local_day);

-- Heatmap grids per camera and store-local day (the hourly grids summed, sparse).
CREATE TABLE rollup_heatmap_daily (
    store_id    text NOT NULL,
    camera_id   text NOT NULL,
    local_day   date NOT NULL,
    grid_w      smallint NOT NULL,
    grid_h      smallint NOT NULL,
    hours       integer NOT NULL,
    cells       smallint[] NOT NULL,
    person_s    real[] NOT NULL,
    dwell_s     real[] NOT NULL,
    PRIMARY KEY (camera_id, local_day)
);
CREATE INDEX rollup_heatmap_store_day ON rollup_heatmap_daily (store_id, local_day);

-- Return on investment per store and calendar month (store-local).
CREATE TABLE rollup_roi_monthly (
    store_id        text NOT NULL,
    month           date NOT NULL,             -- first day of the month
    currency        text NOT NULL,
    confirmed       integer NOT NULL,
    prevented_loss  double precision NOT NULL, -- confirmed x avg_loss_per_incident x recovery_rate
    monthly_cost    double precision NOT NULL,
    net_benefit     double precision NOT NULL,
    roi_pct         double precision,          -- null without a cost
    payback_months  double precision,          -- cost / prevented loss a month; null without one
    PRIMARY KEY (store_id, month)
);

-- Detection quality from the analysts' verdicts: per store, incident type and signal.
CREATE TABLE rollup_detection_quality (
    store_id         text NOT NULL,
    incident_type    text NOT NULL,
    signal           text NOT NULL,             -- a signal of the incidents, or '*' for all of them
    incidents        integer NOT NULL,
    reviewed         integer NOT NULL,
    confirmed        integer NOT NULL,
    rejected         integer NOT NULL,
    confirmation_rate double precision,         -- confirmed / reviewed; null before any review
    review_hours_p50 double precision,          -- time from the incident's start to its verdict
    review_hours_p90 double precision,
    PRIMARY KEY (store_id, incident_type, signal)
);
