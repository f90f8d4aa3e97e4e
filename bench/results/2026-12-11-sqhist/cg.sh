#!/bin/bash
# callgrind of the whole worker (bench/gap_profile.py, 10 slots, no profiler) for one
# variant: $1 = label (its src copy in /tmp/sqhist/v_$1), $2 = run tag, rest: gap_profile args
# per job = (Ir(3000) - Ir(1000)) / 2000
set -u
v=$1; tag=$2; shift 2
for n in 1000 3000; do
  PYTHONHASHSEED=0 PYTHONPATH=/tmp/sqhist/v_$v nice valgrind --tool=callgrind \
    --callgrind-out-file=/tmp/sqhist/cg/$v.$tag.$n.out \
    /work/main/.venv/bin/python /work/wt-sqhist/bench/gap_profile.py --jobs $n "$@" \
    >/tmp/sqhist/cg/$v.$tag.$n.stdout 2>/tmp/sqhist/cg/$v.$tag.$n.err
done
a=$(grep -h '^summary:' /tmp/sqhist/cg/$v.$tag.1000.out | awk '{print $2}')
b=$(grep -h '^summary:' /tmp/sqhist/cg/$v.$tag.3000.out | awk '{print $2}')
echo "$v.$tag 1000:$a 3000:$b per_job:$(( (b - a) / 2000 )) args:$*" >> /tmp/sqhist/cg/totals.txt
