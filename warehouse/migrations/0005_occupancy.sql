-- Footfall and occupancy per camera zone and minute of frame time (flows/occupancy.py).
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
    PRIMARY KEY (camera_id, zone_id, minute)
);
CREATE INDEX occupancy_minutes_minute ON occupancy_minutes (minute);

-- Frames that arrived after their minute was closed: kept, and counted on the minute.
CREATE TABLE occupancy_late (
    camera_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    frame_id    bigint NOT NULL,
    minute      timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (camera_id, ts)
);
