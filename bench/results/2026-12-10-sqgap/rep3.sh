#!/bin/bash
v=$1; shift
for n in 1000 3000; do
  PYTHONHASHSEED=0 PYTHONPATH=/work/wt-sqgap/src nice valgrind --tool=callgrind --callgrind-out-file=/tmp/sqgap/cg/ko.$v.$n.out \
    /work/main/.venv/bin/python /work/wt-sqgap/bench/gap_profile.py --jobs $n "$@" >/dev/null 2>&1
done
