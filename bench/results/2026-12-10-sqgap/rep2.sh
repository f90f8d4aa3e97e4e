#!/bin/bash
v=$1; src=$2; shift 2
for n in 1000 3000; do
  env PYTHONHASHSEED=0 PYTHONPATH=$src "$@" nice valgrind --tool=callgrind --callgrind-out-file=/tmp/sqgap/cg/ko.$v.$n.out \
    /work/main/.venv/bin/python /work/wt-sqgap/bench/gap_profile.py --jobs $n >/dev/null 2>&1
done
