-- Conveyor schema, version 3 (PostgreSQL): each job keeps its task's sensitive paths (JSON
-- text, as codec.sensitive_paths builds them; NULL when there are none, or for jobs stored
-- before this version), so that every reader redacts them, whether or not it knows the task.
-- A nullable column without a default: no table rewrite, whatever the table's size.
ALTER TABLE {schema}.conveyor_jobs ADD COLUMN IF NOT EXISTS sensitive text;
