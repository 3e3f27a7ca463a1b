-- A store's own rule thresholds (flows.behaviour.Thresholds names); empty = the defaults.
ALTER TABLE stores ADD COLUMN thresholds jsonb NOT NULL DEFAULT '{}'::jsonb;
