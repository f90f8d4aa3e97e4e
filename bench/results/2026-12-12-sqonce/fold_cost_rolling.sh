#!/bin/bash
out=/tmp/sqonce/fc
for run in "1000" "3000" "3000 --fold"; do
  tag=$(echo "$run" | tr -d ' -')
  PYTHONHASHSEED=0 PYTHONPATH=/tmp/sqonce-new2/src nice valgrind --tool=callgrind --callgrind-out-file=$out/once2.t1q1.$tag.out \
    /work/main/.venv/bin/python /work/wt-sqonce/bench/fold_cost.py --rows $run >/dev/null 2>$out/once2.t1q1.$tag.err
done
a=$(grep -m1 '^summary:' $out/once2.t1q1.1000.out | cut -d' ' -f2); b=$(grep -m1 '^summary:' $out/once2.t1q1.3000.out | cut -d' ' -f2); c=$(grep -m1 '^summary:' $out/once2.t1q1.3000fold.out | cut -d' ' -f2)
echo "once (rolling-deploy commit) t1q1 insert/row $(( (b - a) / 2000 )) fold/row $(( (c - b) / 3000 ))"
