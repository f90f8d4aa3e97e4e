-- Conveyor schema, version 12: reserved for cron pause and search (issue 16); a no-op until that work lands.
SELECT 1;
