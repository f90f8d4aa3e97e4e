-- Conveyor schema, version 25: nothing to change on SQLite, whose writers already publish
-- events only while a subscriber's socket exists (sqlite/wake.py). PostgreSQL's version 25
-- keeps its subscribers in a table so that no statement notifies an empty room.
-- Kept so that both dialects number their migrations alike.
SELECT 1;
