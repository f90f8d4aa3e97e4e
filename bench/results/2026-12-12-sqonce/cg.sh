#!/bin/bash
# callgrind of the whole worker (bench/gap_profile.py without --out: no profiler; 10 slots,
# no-op jobs, fresh file), per tree, size and mode; per job = (Ir(3000) - Ir(1000)) / 2000.
# usage: cg.sh TREE_NAME SRC_DIR REPS MODE   (MODE: det = --no-interval-fold --fold, the
# fold after the drain in batches of 10,000; int = --fold, maintenance's interval folds on)
set -u
name=$1 src=$2 reps=$3 mode=$4
flags="--fold"; [ "$mode" = det ] && flags="--no-interval-fold --fold"
for r in $(seq 1 "$reps"); do
 for n in 1000 3000; do
  PYTHONHASHSEED=0 PYTHONPATH=$src nice valgrind --tool=callgrind \
    --callgrind-out-file=/tmp/sqonce/cg/$name.$mode.r$r.$n.out \
    /work/main/.venv/bin/python /work/wt-sqonce/bench/gap_profile.py --jobs $n $flags \
    >/tmp/sqonce/cg/$name.$mode.r$r.$n.stdout 2>/tmp/sqonce/cg/$name.$mode.r$r.$n.err
  echo "$name $mode r$r $n $(grep -h 'summary:' /tmp/sqonce/cg/$name.$mode.r$r.$n.err | head -1) $(date -u +%T)"
 done
done
