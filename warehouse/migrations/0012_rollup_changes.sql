-- What the flows changed, by camera and hour, for the rollups' incremental refresh
-- (warehouse/rollups.py): "which hours of which cameras changed since the watermark" is a
-- look-up here instead of a scan of per-minute occupancy (tens of millions of rows at chain
-- scale, most of them old). The writers add a row per camera-hour they touch, in the same
-- transaction as the rows themselves; retention removes the rows every rollup has read.
CREATE TABLE rollup_changes (
    source      text NOT NULL,                  -- 'occupancy' (occupancy_minutes) or 'heatmap' (heatmap_hours)
    id          text NOT NULL,                  -- the camera
    period      timestamptz NOT NULL,           -- the hour (UTC) that changed
    changed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id, period)
);
CREATE INDEX rollup_changes_changed_at ON rollup_changes (changed_at);

-- Changes made since the rollups last read, so the first incremental refresh after this
-- migration misses nothing (with no rollup state yet, the first refresh rebuilds anyway).
INSERT INTO rollup_changes (source, id, period, changed_at)
SELECT 'occupancy', camera_id, date_trunc('hour', minute), max(updated_at)
FROM occupancy_minutes
WHERE updated_at > (SELECT watermark - interval '10 minutes' FROM rollup_state WHERE name = 'footfall_hourly')
GROUP BY camera_id, date_trunc('hour', minute);
INSERT INTO rollup_changes (source, id, period, changed_at)
SELECT 'heatmap', camera_id, hour, max(updated_at)
FROM heatmap_hours
WHERE updated_at > (SELECT watermark - interval '10 minutes' FROM rollup_state WHERE name = 'heatmap_daily')
GROUP BY camera_id, hour;
