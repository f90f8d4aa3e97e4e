-- Placeholder (branch slow10 only): keeps the numbers 1..n while other branches hold 0025.
-- Drop this file at merge, or renumber 0027_slow_10min.sql down if 0025 is still free.
SELECT 1;
