#!/bin/bash
# callgrind of the whole worker (bench/worker_cpu.py --child, 10 slots) per tree and size
set -u
for n in 1000 3000; do
 for t in main base; do
  src=/work/wt-sqgap/src; [ $t = base ] && src=/tmp/sqgap-base/src
  PYTHONHASHSEED=0 PYTHONPATH=$src nice valgrind --tool=callgrind --callgrind-out-file=/tmp/sqgap/cg/$t.$n.out \
    /work/main/.venv/bin/python /work/wt-sqgap/bench/worker_cpu.py --child --jobs $n --concurrency 10 >/tmp/sqgap/cg/$t.$n.stdout 2>/tmp/sqgap/cg/$t.$n.err
  echo "$t $n done $(date -u +%T)"
 done
done
