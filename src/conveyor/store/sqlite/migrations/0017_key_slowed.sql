-- Conveyor schema, version 17: RateLimited(retry_in, slow="key") slows one key down
-- (limits/keys.py): no job of the key starts on any worker before `slowed_until`. Kept apart
-- from `parked_until`, which enqueue and settles clear: a claim that reads the key before
-- then parks it again until that time.
ALTER TABLE conveyor_limit_keys ADD COLUMN slowed_until REAL;
