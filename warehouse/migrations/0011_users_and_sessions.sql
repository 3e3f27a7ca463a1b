-- Dashboard accounts (warehouse/users.py, `shrinkwatch users ...`): a role, and for a store
-- manager the stores they may see; argon2id password hashes only.
CREATE TABLE users (
    username      text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
    display_name  text NOT NULL DEFAULT '',
    email         text,
    role          text NOT NULL CHECK (role IN ('admin', 'analyst', 'store_manager')),
    stores        text[] NOT NULL DEFAULT '{}',   -- a store manager's stores
    password_hash text,                           -- argon2id; NULL: single sign-on only
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (role <> 'store_manager' OR cardinality(stores) > 0)
);
CREATE UNIQUE INDEX users_email ON users (lower(email)) WHERE email IS NOT NULL;

-- Signed-in browsers. The cookie holds a random token; only its SHA-256 is stored, so a
-- copy of this table signs nobody in. A session ends when it expires, on sign-out, when
-- its user's password changes or the user is disabled: every request checks it here.
CREATE TABLE user_sessions (
    token_sha256  bytea PRIMARY KEY,
    username      text NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz,
    ended_why     text
);
CREATE INDEX user_sessions_open ON user_sessions (username) WHERE ended_at IS NULL;

-- Failed sign-ins, by account and by client address: what throttling counts.
CREATE TABLE sign_in_failures (
    key  text NOT NULL,                           -- 'user:<name>' or 'ip:<address>'
    at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failures_key_at ON sign_in_failures (key, at);

-- What each user has seen, apart from the verdict (triage: "seen" a night's alerts at once).
CREATE TABLE incident_seen (
    incident_id  text NOT NULL REFERENCES incidents ON DELETE CASCADE,
    username     text NOT NULL REFERENCES users ON DELETE CASCADE,
    seen_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (username, incident_id)
);
