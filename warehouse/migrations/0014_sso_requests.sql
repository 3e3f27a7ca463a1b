-- Single sign-on (streamlit_app/sso.py): a sign-in sent to the identity provider and not
-- back yet. The provider returns `state`; the row gives back the nonce the ID token must
-- carry, the PKCE verifier for the code exchange and where to go afterwards. A row is used
-- once (taken and deleted) and is good for ten minutes.
CREATE TABLE sso_requests (
    state         text PRIMARY KEY,
    nonce         text NOT NULL,
    code_verifier text NOT NULL,
    next_path     text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
