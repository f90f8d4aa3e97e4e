#!/bin/bash
export DRAIN_PG_DATABASE=bench_pgcap
for t in base head base head; do
  W=$(mktemp -d /tmp/pgcap/w.XXXX)
  python3 -c "
import sys; sys.path.insert(0,'/tmp/pgcap'); import limit_drain2
open('$W/limit_drain_app.py','w').write(limit_drain2.APP)"
  OUT=$(PYTHONPATH=/tmp/pgcap/$t/src /work/main/.venv/bin/python /tmp/pgcap/limit_drain2.py --child --store postgres --limit 20 --jobs 20000 --processes 2 --concurrency 10 --timeout 200 --workdir $W | tail -1)
  sleep 1.5
  echo "$t $(cut -d' ' -f1 /proc/loadavg) $OUT"
  psql -h 127.0.0.1 -U postgres -d bench_pgcap -Atc "select indexrelname, idx_scan, idx_tup_read, idx_tup_fetch from pg_stat_user_indexes where relname='conveyor_jobs' and idx_scan > 0 order by idx_tup_read desc"
done
