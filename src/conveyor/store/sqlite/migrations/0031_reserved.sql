-- Conveyor schema, version 31: a PLACEHOLDER on branch drainsq only, holding a number assigned
-- to another change so that this branch's migration 0032 can be applied and tested (migrate.py
-- wants 1..n). It changes nothing. At merge, the real 0031 replaces this file: drop it.
SELECT 1;
