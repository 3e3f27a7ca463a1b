-- Alerts (alerts/): who hears of what, and the outbox that makes each alert happen once.

-- A recipient and the rule that decides what they hear of. Quiet hours are store-local
-- (each store's own time zone); an alert due in them waits until they end.
CREATE TABLE alert_recipients (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
    name            text NOT NULL,
    email           text,
    phone           text,                        -- E.164, for SMS
    webhook_url     text,
    webhook_secret  text,                        -- signs each webhook body (HMAC-SHA256)
    channels        text[] NOT NULL CHECK (channels <@ ARRAY['email', 'sms', 'webhook']),
    stores          text[] NOT NULL,             -- the stores they hear of
    min_level       text NOT NULL DEFAULT 'high' CHECK (min_level IN ('low', 'medium', 'high')),
    incident_types  text[] NOT NULL DEFAULT '{}', -- empty: every type
    quiet_start     time,                        -- store-local; both null: never quiet
    quiet_end       time,
    max_per_hour    integer NOT NULL DEFAULT 10 CHECK (max_per_hour > 0),
    digest          text,                        -- 'daily 07:00', 'weekly mon 07:00', or null
    timezone        text NOT NULL DEFAULT 'UTC', -- the digest's clock
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

-- One row per message that must be sent, keyed by what it is about: (subject, recipient,
-- channel, reason) is unique, so whatever reads the incidents twice (a restart, a replay)
-- enqueues nothing twice. A sender claims due rows ('sending'), sends, and marks them
-- 'sent'; a failure goes back to 'pending' with a later not_before (exponential backoff) or,
-- when it cannot succeed, to 'failed' with the reason. The dashboard shows failures.
CREATE TABLE alert_outbox (
    id           bigserial PRIMARY KEY,
    subject      text NOT NULL,                  -- an incident id, or what a summary covers
    recipient_id text NOT NULL REFERENCES alert_recipients ON DELETE CASCADE,
    channel      text NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
    reason       text NOT NULL,                  -- new | escalated | summary | test | ...
    store_id     text,
    payload      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    not_before   timestamptz NOT NULL DEFAULT now(),
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    UNIQUE (subject, recipient_id, channel, reason)
);
CREATE INDEX alert_outbox_due ON alert_outbox (not_before) WHERE status IN ('pending', 'sending');
CREATE INDEX alert_outbox_recent ON alert_outbox (recipient_id, channel, created_at);

-- "Mute this camera / this store for N minutes": no alerts about it until `until`.
CREATE TABLE alert_mutes (
    kind        text NOT NULL CHECK (kind IN ('camera', 'store')),
    target      text NOT NULL,
    until       timestamptz NOT NULL,
    muted_by    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, target)
);

-- Each recipient's digest watermark: the end of the last window a digest was queued for.
-- A digest covers (watermark, the schedule's latest time]; after downtime that is the whole
-- gap, in one digest, queued once (its outbox key is the window's end).
CREATE TABLE alert_digests (
    recipient_id text PRIMARY KEY REFERENCES alert_recipients ON DELETE CASCADE,
    watermark    timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
