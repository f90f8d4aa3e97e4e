-- Conveyor schema, version 8 (PostgreSQL): find a job by the end of its id (lookup.py): the
-- id reversed, with text_pattern_ops so that `LIKE 'reversed-tail%'` is an index range scan
-- whatever the database's collation.
CREATE INDEX conveyor_jobs_id_tail ON {schema}.conveyor_jobs (reverse(id) text_pattern_ops);
