#!/bin/bash
# fold A/B: base (d0031a5) vs branch, SQLite then PostgreSQL, 4 rounds, order flipped
cd /work/wt-filt30
for r in 1 2 3 4; do
  if [ $((r % 2)) = 1 ]; then order="base new"; else order="new base"; fi
  for keys in --keys ""; do
    for t in $order; do
      if [ $t = base ]; then src=/tmp/pt-d0031a5/src; else src=/work/wt-filt30/src; fi
      echo "== round $r $t keys=${keys:-no}"
      PYTHONPATH=$src /work/main/.venv/bin/python bench/history_fold_scale.py 500000 --short $keys | tail -2
      PYTHONPATH=$src /work/main/.venv/bin/python bench/pg_fold_cpu.py filt30_fold_$t 500000 0.01 16 $keys
    done
  done
done
echo done
