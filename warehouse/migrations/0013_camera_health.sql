-- Each camera reader's latest state (flows/health.py, from sw.camera-health), for the
-- dashboard's camera tiles and, later, camera alerts: the status, since when it has had it,
-- and the reader's last report. Written idempotently: a report older than the one stored
-- changes nothing (a replay after a restart is harmless).
CREATE TABLE camera_health (
    camera_id     text PRIMARY KEY,
    store_id      text NOT NULL,
    status        text NOT NULL CHECK (status IN ('online', 'degraded', 'offline')),
    status_since  timestamptz NOT NULL,       -- the first report of the current status
    reported_at   timestamptz NOT NULL,       -- the latest report
    fps_in        double precision NOT NULL,
    fps_analysed  double precision NOT NULL,
    last_frame_ts timestamptz,
    error         text
);
