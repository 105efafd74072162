-- Web console sessions (issue 17). The browser holds a random token in an
-- HttpOnly cookie; only its SHA-256 is kept here, so a database dump signs
-- no one in. A row per signed-in browser makes idle timeout, sign-out and
-- revocation hold on every replica: each console request reads it. The
-- console calls the API with a short-lived session JWT issued per request
-- for principal; the raw API key used to sign in is never stored.
CREATE TABLE console_sessions (
    token_hash   text PRIMARY KEY,
    org_id       text NOT NULL REFERENCES orgs(id),
    principal    text NOT NULL CHECK (principal <> ''),
    person_id    text NOT NULL DEFAULT '',   -- invitation (people.id) for a Telegram sign-in
    key_id       text NOT NULL DEFAULT '',   -- API key signed in with; revoking it ends the session
    csrf         text NOT NULL,              -- per-session CSRF token, in every form
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
