-- Conveyor schema, version 27: each 10 minutes' slowest attempt per task and per queue,
-- kept by the history fold (issue 15). See the SQLite migration of the same number.
CREATE TABLE {schema}.conveyor_slow_tops_named (
    kind     text NOT NULL,
    name     text NOT NULL,
    tenant   text NOT NULL,
    part     int8 NOT NULL,
    duration double precision NOT NULL,
    ended_at double precision NOT NULL,
    PRIMARY KEY (kind, name, tenant, part)
);

CREATE INDEX conveyor_slow_tops_named_part ON {schema}.conveyor_slow_tops_named (part);

CREATE TABLE {schema}.conveyor_slow_tops_named_all (
    kind     text NOT NULL,
    name     text NOT NULL,
    part     int8 NOT NULL,
    duration double precision NOT NULL,
    ended_at double precision NOT NULL,
    PRIMARY KEY (kind, name, part)
);

CREATE INDEX conveyor_slow_tops_named_all_part
    ON {schema}.conveyor_slow_tops_named_all (part);

INSERT INTO {schema}.conveyor_slow_tops_named (kind, name, tenant, part, duration, ended_at)
SELECT DISTINCT ON (1, 2, 3, 4) * FROM (
    SELECT 'task', task, coalesce(tenant, ''), floor(ended_at / 600)::int8, duration, ended_at
    FROM {schema}.conveyor_attempts
    UNION ALL
    SELECT 'queue', queue, coalesce(tenant, ''), floor(ended_at / 600)::int8, duration,
           ended_at
    FROM {schema}.conveyor_attempts) AS n
ORDER BY 1, 2, 3, 4, 5 DESC, 6 DESC;

INSERT INTO {schema}.conveyor_slow_tops_named_all (kind, name, part, duration, ended_at)
SELECT DISTINCT ON (kind, name, part) kind, name, part, duration, ended_at
FROM {schema}.conveyor_slow_tops_named
ORDER BY kind, name, part, duration DESC, ended_at DESC;
