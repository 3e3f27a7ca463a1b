-- Per-camera switch for motion gating in the detector (on by default).
ALTER TABLE cameras ADD COLUMN motion_gating boolean NOT NULL DEFAULT true;
