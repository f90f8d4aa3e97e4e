#!/bin/bash
v=$1
for n in 1000 3000; do
  PYTHONHASHSEED=0 PYTHONPATH=/tmp/sqgap/v_$v/src nice valgrind --tool=callgrind --callgrind-out-file=/tmp/sqgap/cg/ko.$v.$n.out \
    /work/main/.venv/bin/python /work/wt-sqgap/bench/gap_profile.py --jobs $n >/tmp/sqgap/cg/ko.$v.$n.stdout 2>/tmp/sqgap/cg/ko.$v.$n.err
  echo "$v $n done $(date -u +%T)" >> /tmp/sqgap/cg/kolog4
done
