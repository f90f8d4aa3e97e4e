-- Conveyor schema, version 33 (PostgreSQL): nothing. SQLite's 0033 keeps every tenant's day
-- rows of the task rollups in (task, queue) order, since SQLite groups a month's ~6,200 rows
-- by sorting them; PostgreSQL groups them by hashing (postgres/history.py NO_SORT). The
-- number is kept so both stores' versions stay one sequence.
SELECT 1;
