-- Conveyor schema, version 18: nothing to change on SQLite. PostgreSQL's version 18 makes its
-- statement-level count trigger skip work a statement cannot need; SQLite's count triggers
-- (version 11) are per row and already fire only on the columns they count. Kept so that
-- both dialects number their migrations alike.
SELECT 1;
