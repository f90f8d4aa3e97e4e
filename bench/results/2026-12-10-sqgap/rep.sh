#!/bin/bash
v=$1; src=$2
for n in 1000 3000; do
  PYTHONHASHSEED=0 PYTHONPATH=$src nice valgrind --tool=callgrind --callgrind-out-file=/tmp/sqgap/cg/ko.$v.$n.out \
    /work/main/.venv/bin/python /work/wt-sqgap/bench/gap_profile.py --jobs $n >/dev/null 2>&1
  echo "$v $n done $(date -u +%T)" >> /tmp/sqgap/cg/kolog5
done
