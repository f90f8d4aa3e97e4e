-- Conveyor schema, version 14: reserved for attempt history (issue 15); a no-op until that work lands.
SELECT 1;
