#!/bin/bash
# bench/fold_cost.py under callgrind per tree: insert per row = (Ir(3000) - Ir(1000)) / 2000,
# fold per row = (Ir(3000, --fold) - Ir(3000)) / 3000; one task and queue, and 8 x 2
set -u
out=/tmp/sqonce/fc; mkdir -p $out
for spread in "1 1" "8 2"; do
 set -- $spread; tq="t$1q$2"
 for t in main once; do
  src=/tmp/sqonce-base/src; [ $t = once ] && src=/tmp/sqonce-new/src
  for run in "1000" "3000" "3000 --fold"; do
   tag=$(echo "$run" | tr -d ' -')
   PYTHONHASHSEED=0 PYTHONPATH=$src nice valgrind --tool=callgrind --callgrind-out-file=$out/$t.$tq.$tag.out \
     /work/main/.venv/bin/python /work/wt-sqonce/bench/fold_cost.py --rows $run --tasks $1 --queues $2 \
     >/dev/null 2>$out/$t.$tq.$tag.err
  done
  a=$(grep -m1 '^summary:' $out/$t.$tq.1000.out | cut -d' ' -f2)
  b=$(grep -m1 '^summary:' $out/$t.$tq.3000.out | cut -d' ' -f2)
  c=$(grep -m1 '^summary:' $out/$t.$tq.3000fold.out | cut -d' ' -f2)
  echo "$t $tq insert/row $(( (b - a) / 2000 )) fold/row $(( (c - b) / 3000 ))"
 done
done
