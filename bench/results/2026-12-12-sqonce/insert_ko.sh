#!/bin/bash
# the trip's attempts insert per row on the once tree (bench/fold_cost.py, no fold) with one
# index of conveyor_attempts dropped at a time: what each index costs the settle's trip
set -u
out=/tmp/sqonce/fc; mkdir -p $out
for idx in conveyor_attempts_job conveyor_attempts_ended conveyor_attempts_slow_10min; do
 for n in 1000 3000; do
  PYTHONHASHSEED=0 PYTHONPATH=/tmp/sqonce-new/src nice valgrind --tool=callgrind --callgrind-out-file=$out/ko.$idx.$n.out \
    /work/main/.venv/bin/python /work/wt-sqonce/bench/fold_cost.py --rows $n --drop-index $idx >/dev/null 2>$out/ko.$idx.$n.err
 done
 a=$(grep -m1 '^summary:' $out/ko.$idx.1000.out | cut -d' ' -f2); b=$(grep -m1 '^summary:' $out/ko.$idx.3000.out | cut -d' ' -f2)
 echo "once without $idx: insert/row $(( (b - a) / 2000 ))"
done
