-- Conveyor schema, version 11: reserved for exact job counters (issue 16); a no-op until that work lands.
SELECT 1;
