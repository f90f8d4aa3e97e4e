#!/bin/bash
# reads A/B: base (d0031a5) vs branch on the same migrated stores, 4 rounds, order flipped
cd /work/wt-filt30
PG=postgresql://postgres@127.0.0.1:5432/test
for r in 1 2 3 4; do
  if [ $((r % 2)) = 1 ]; then order="base new"; else order="new base"; fi
  for t in $order; do
    if [ $t = base ]; then src=/tmp/pt-d0031a5/src; else src=/work/wt-filt30/src; fi
    echo "== round $r $t sqlite"
    PYTHONPATH=$src /work/main/.venv/bin/python bench/view_reads.py --url sqlite:////tmp/filt30/v30.db --analytics --filters --only slow --rounds 20 --json /tmp/filt30/res/sqlite-$t-r$r.json | grep "^| slow"
    echo "== round $r $t pg server CPU"
    PYTHONPATH=$src /work/main/.venv/bin/python bench/slow_read_cpu.py $PG filt30_v30 20 /tmp/filt30/res/pgcpu-$t-r$r.json --filtered
  done
done
echo done
