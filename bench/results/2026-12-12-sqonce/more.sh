#!/bin/bash
# more det runs, interleaved: main r3, once r3, main r4, once r4 (cg.sh names runs r1..rN,
# so each call writes to its own tag)
set -u
for r in 3 4 5; do
 for t in main once; do
  src=/tmp/sqonce-base/src; [ $t = once ] && src=/tmp/sqonce-new/src
  for n in 1000 3000; do
   PYTHONHASHSEED=0 PYTHONPATH=$src nice valgrind --tool=callgrind \
     --callgrind-out-file=/tmp/sqonce/cg/$t.det.r$r.$n.out \
     /work/main/.venv/bin/python /work/wt-sqonce/bench/gap_profile.py --jobs $n --no-interval-fold --fold \
     >/tmp/sqonce/cg/$t.det.r$r.$n.stdout 2>/tmp/sqonce/cg/$t.det.r$r.$n.err
   echo "$t det r$r $n $(date -u +%T)"
  done
 done
done
