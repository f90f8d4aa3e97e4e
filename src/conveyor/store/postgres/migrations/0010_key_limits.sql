-- Conveyor schema, version 10: reserved for per-key limits (issue 14); a no-op until that work lands.
SELECT 1;
