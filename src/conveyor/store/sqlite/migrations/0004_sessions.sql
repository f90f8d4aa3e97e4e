-- Conveyor schema, version 4: dashboard sessions (web/sessions.py). The session id itself is
-- never stored, only its SHA-256; `token_check` binds a session to the API token it was
-- opened with, without storing the token. A session is live until the first of its idle and
-- absolute deadlines; sign-out deletes it, and maintenance prunes expired ones.
CREATE TABLE conveyor_sessions (
    id_hash         TEXT NOT NULL PRIMARY KEY,
    token_check     TEXT NOT NULL,
    created_at      REAL NOT NULL,
    idle_expires_at REAL NOT NULL,
    expires_at      REAL NOT NULL
) WITHOUT ROWID;

-- idle_expires_at never passes expires_at, so this one index finds every expired session.
CREATE INDEX conveyor_sessions_idle ON conveyor_sessions (idle_expires_at);
