-- Conveyor schema, version 4 (PostgreSQL): dashboard sessions (web/sessions.py). The session
-- id itself is never stored, only its SHA-256; `token_check` binds a session to the API token
-- it was opened with, without storing the token. A session is live until the first of its
-- idle and absolute deadlines; sign-out deletes it, and maintenance prunes expired ones.
CREATE TABLE {schema}.conveyor_sessions (
    id_hash         text             PRIMARY KEY,
    token_check     text             NOT NULL,
    created_at      double precision NOT NULL,
    idle_expires_at double precision NOT NULL,
    expires_at      double precision NOT NULL,
    CHECK (idle_expires_at <= expires_at)
);

-- idle_expires_at never passes expires_at, so this one index finds every expired session.
CREATE INDEX conveyor_sessions_idle ON {schema}.conveyor_sessions (idle_expires_at)
