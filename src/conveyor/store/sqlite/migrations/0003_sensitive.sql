-- Conveyor schema, version 3 (SQLite): each job keeps its task's sensitive paths (JSON, as
-- codec.sensitive_paths builds them; NULL when there are none, or for jobs stored before
-- this version), so that every reader redacts them, whether or not it knows the task.
ALTER TABLE conveyor_jobs ADD COLUMN sensitive TEXT;
