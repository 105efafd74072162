-- Web console sessions (issue 17; SQLite: times are INTEGER microseconds).
-- The browser holds a random token in an HttpOnly cookie; only its SHA-256
-- is kept here, so a database dump signs no one in. A row per signed-in
-- browser makes idle timeout, sign-out and revocation hold: each console
-- request reads it. The raw API key used to sign in is never stored.
CREATE TABLE console_sessions (
    token_hash   TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    principal    TEXT NOT NULL CHECK (principal <> ''),
    person_id    TEXT NOT NULL DEFAULT '',
    key_id       TEXT NOT NULL DEFAULT '',
    csrf         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
