-- Conveyor schema, version 13: reserved for flow control (issue 14); a no-op until that work lands.
SELECT 1;
