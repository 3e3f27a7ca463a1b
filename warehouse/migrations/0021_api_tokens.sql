-- Issue 22: API tokens (warehouse/api_tokens.py, `shrinkwatch tokens ...`). A token acts for a
-- dashboard account (username) or for a service (no account); it carries a store scope and
-- permissions. The secret is shown once: only the SHA-256 of the token string is kept, so a
-- copy of this table authenticates nobody. A token is live until it is revoked (expired ones
-- stay listed, and keep their name, until then).
CREATE TABLE api_tokens (
    token_id        text PRIMARY KEY CHECK (token_id ~ '^[0-9a-f]{12}$'),  -- public, in the token
    name            text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    username        text REFERENCES users ON DELETE CASCADE,              -- NULL: a service token
    service         boolean NOT NULL,
    stores          text[] NOT NULL DEFAULT '{}',  -- '{}': the user's stores; '{*}': every store
    permissions     text[] NOT NULL,
    secret_sha256   bytea NOT NULL CHECK (length(secret_sha256) = 32),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL,
    expires_at      timestamptz,                   -- NULL: never
    last_used_at    timestamptz,                   -- written at most once a minute
    last_used_from  text,
    revoked_at      timestamptz,
    revoked_by      text,
    CHECK (service = (username IS NULL)),
    CHECK (NOT service OR cardinality(stores) > 0),
    CHECK ('read' = ANY (permissions) AND permissions <@ ARRAY['read', 'review', 'export']),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
CREATE INDEX api_tokens_username ON api_tokens (username) WHERE username IS NOT NULL;
