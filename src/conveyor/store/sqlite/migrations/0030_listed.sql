-- Conveyor schema, version 30 (SQLite): every combination of the jobs list's queue, task,
-- tenant and state filters in a bounded plan (issue 16).
--
-- A list is newest first, one page at a time. Before this index a filter of several fields
-- walked the primary key, or a tenant's (tenant, id) range, in id order, testing each row, and
-- stopped at the page's end: quick when the filter matches often, and a walk of everything in
-- its range when it rarely does (`queue=q7&task=bench.t3&tenant=org-17&state=completed` at 1M
-- jobs: org-17's ~20,000 jobs for ~40 matches, 220 ms; bench/results/2026-12-08-q16.md).
--
-- Here the jobs of one counted key (queue, task, state; then tenant, then id): the keys a
-- filter selects are read from the kept counts (0011), and each key's range holds only its
-- matches, so a page costs the matches and the keys, never the rows that do not match
-- (sqlite/listing.py chooses between this and the walk from the counts).
-- `queue <> ''` (always true: a queue name has 1 to 100 characters, names.py) keeps every
-- statement that does not write it out off this index: only the keyed list does.
-- Its price: an entry per job (~70 bytes at 1M jobs: +69 MB), and each state change moves it.
CREATE INDEX conveyor_jobs_listed ON conveyor_jobs (queue, task, state, tenant, id)
    WHERE queue <> '';
