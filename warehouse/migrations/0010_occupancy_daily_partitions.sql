-- Per-minute occupancy is the table that grows (about 0.9 M rows a day at 200 cameras) and
-- the one retention trims every day, so it is partitioned by UTC day of `minute`:
-- - pruning a day drops its partition (no DELETE of a million rows, no bloat to vacuum);
-- - a question about a few days reads only their partitions;
-- - the key leads with (camera_id, minute), so one camera's hours are one index range
--   (the rollup refresh reads exactly that); ON CONFLICT (camera_id, zone_id, minute)
--   still finds it (conflict targets match a unique index's columns in any order).
-- A BRIN index on updated_at lets "what changed since the watermark" skip every block of
-- the days that did not change (rows are written close to the time they describe).
-- Rows of a day that has no partition yet land in the default partition and lose nothing;
-- occupancy_add_partition() moves them when it creates that day (warehouse/partitions.py
-- keeps a week ahead, the rollup scheduler calls it on every run).

ALTER TABLE occupancy_minutes RENAME TO occupancy_minutes_unpartitioned;
ALTER INDEX occupancy_minutes_pkey RENAME TO occupancy_minutes_unpartitioned_pkey;
DROP INDEX occupancy_minutes_minute;

CREATE TABLE occupancy_minutes (
    camera_id   text NOT NULL,
    zone_id     text NOT NULL,                  -- a zone id, or '*' for the whole view
    minute      timestamptz NOT NULL,           -- start of the minute (UTC)
    frames      integer NOT NULL,
    visitors    integer NOT NULL,               -- distinct tracks seen in the zone that minute
    people_avg  double precision NOT NULL,      -- people at once, averaged over the frames
    people_peak integer NOT NULL,
    late_frames integer NOT NULL DEFAULT 0,     -- frames that arrived after the minute closed
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (camera_id, minute, zone_id)
) PARTITION BY RANGE (minute);
CREATE INDEX occupancy_minutes_updated_at ON occupancy_minutes USING brin (updated_at)
    WITH (pages_per_range = 32, autosummarize = on);
CREATE TABLE occupancy_minutes_default PARTITION OF occupancy_minutes DEFAULT;

-- The partition of one UTC day, created if missing: built beside the table, filled with the
-- day's rows that waited in the default partition, then attached (ATTACH takes a lighter
-- lock on occupancy_minutes than CREATE TABLE ... PARTITION OF, so writers and readers of
-- other days carry on). Returns whether it created the partition.
CREATE FUNCTION occupancy_add_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := 'occupancy_minutes_' || to_char(day, 'YYYYMMDD');
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE occupancy_minutes INCLUDING DEFAULTS)', part);
    EXECUTE format(
        'WITH moved AS (DELETE FROM occupancy_minutes_default WHERE minute >= %L AND minute < %L RETURNING *)
         INSERT INTO %I SELECT * FROM moved', lo, hi, part);
    EXECUTE format('ALTER TABLE occupancy_minutes ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, lo, hi);
    RETURN true;
END $$;

-- Partitions for the days that have rows, and for yesterday to a week ahead.
SELECT occupancy_add_partition(day::date)
FROM (
    SELECT DISTINCT (minute AT TIME ZONE 'UTC')::date AS day FROM occupancy_minutes_unpartitioned
    UNION
    SELECT generate_series((now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7, '1 day')::date
) days ORDER BY day;

INSERT INTO occupancy_minutes SELECT * FROM occupancy_minutes_unpartitioned;
DROP TABLE occupancy_minutes_unpartitioned;

-- The same "what changed" question of the hourly heatmaps.
CREATE INDEX heatmap_hours_updated_at ON heatmap_hours USING brin (updated_at)
    WITH (pages_per_range = 32, autosummarize = on);
