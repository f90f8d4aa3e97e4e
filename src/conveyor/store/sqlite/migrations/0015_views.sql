-- Conveyor schema, version 15: reserved for operator views (issue 16); a no-op until that work lands.
SELECT 1;
