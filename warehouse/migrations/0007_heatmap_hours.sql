-- Where people stand, per camera and hour of frame time (flows/occupancy.py): person-seconds
-- on a grid of grid_w x grid_h cells over the image, kept sparse (most cells of a view stay
-- empty): cells[i] is a cell index (row * grid_w + column), person_s[i] the person-seconds
-- spent there, dwell_s[i] the part of it spent nearly still.
CREATE TABLE heatmap_hours (
    camera_id   text NOT NULL,
    hour        timestamptz NOT NULL,           -- start of the hour (UTC)
    grid_w      smallint NOT NULL,
    grid_h      smallint NOT NULL,
    frames      integer NOT NULL,
    cells       smallint[] NOT NULL,
    person_s    real[] NOT NULL,
    dwell_s     real[] NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (camera_id, hour),
    CHECK (cardinality(cells) = cardinality(person_s) AND cardinality(cells) = cardinality(dwell_s))
);
CREATE INDEX heatmap_hours_hour ON heatmap_hours (hour);
