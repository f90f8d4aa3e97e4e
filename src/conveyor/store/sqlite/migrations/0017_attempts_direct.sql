-- Conveyor schema, version 17 (SQLite): a settle writes its attempt rows straight into
-- conveyor_attempts (store/sqlite/history.py), no longer into conveyor_attempts_pending for a
-- fold to copy and delete; the fold adds to the rollups only the rows past a watermark
-- (store/sqlite/history_fold.py). `bucket`: the duration's histogram bucket
-- (history/rollup.py), set by the settle, so the fold runs in SQL alone; NULL on the rows
-- folded before this version (and on rows an older worker's fold still inserts: it has
-- counted them already, so the new fold skips them). Pending rows an older worker still
-- writes are moved into conveyor_attempts by the new fold, bucket and all, then counted.
ALTER TABLE conveyor_attempts ADD COLUMN bucket INTEGER;

-- The highest conveyor_attempts id whose row the rollups count (one row). Rowids only grow
-- while the table keeps a row at or above it: pruning deletes only counted rows and then
-- lowers the watermark to the table's highest id, so a reused id is always above it.
CREATE TABLE conveyor_attempts_folded (upto INTEGER NOT NULL);
INSERT INTO conveyor_attempts_folded (upto) SELECT coalesce(max(id), 0) FROM conveyor_attempts;
