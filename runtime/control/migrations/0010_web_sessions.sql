-- Web UI sessions: a signed-in browser holds a random secret in a cookie; the row keeps its
-- SHA-256, the token it was opened with (revoking the token ends the session), the form token
-- its pages carry (CSRF), and when it ends.
CREATE TABLE web_sessions (
    id TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
