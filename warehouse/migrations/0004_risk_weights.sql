-- Feedback calibration: per-store signal weights, versioned (flows/calibration.py), and the
-- weights version each incident state was scored with, so a score can be reproduced.
CREATE TABLE risk_weights (
    store_id        text NOT NULL,
    version         integer NOT NULL CHECK (version >= 1),
    weights         jsonb NOT NULL,               -- {signal: weight}
    evidence        jsonb NOT NULL,               -- {signal: {"confirmed": n, "rejected": n}}
    method          text NOT NULL,
    prior_strength  double precision NOT NULL,
    reviews         integer NOT NULL,             -- reviewed incidents taken into account
    reviewed_until  timestamptz,                  -- the newest review among them
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, version)
);

ALTER TABLE incidents ADD COLUMN weights_version integer;
CREATE INDEX incidents_store_reviewed ON incidents (store_id) WHERE user_confirmed IS NOT NULL;
