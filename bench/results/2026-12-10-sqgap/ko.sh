#!/bin/bash
# callgrind knock-outs of main's tree (bench/gap_profile.py, no profilers), 1000 and 3000 jobs
set -u
for n in 1000 3000; do
 for v in plain nohist notrig; do
  extra=(); envs=(PYTHONHASHSEED=0 PYTHONPATH=/work/wt-sqgap/src)
  [ $v = nohist ] && envs+=(CONVEYOR_HISTORY=false)
  [ $v = notrig ] && extra=(--drop-triggers)
  env "${envs[@]}" nice valgrind --tool=callgrind --callgrind-out-file=/tmp/sqgap/cg/ko.$v.$n.out \
    /work/main/.venv/bin/python /work/wt-sqgap/bench/gap_profile.py --jobs $n "${extra[@]}" >/tmp/sqgap/cg/ko.$v.$n.stdout 2>/tmp/sqgap/cg/ko.$v.$n.err
  echo "$v $n done $(date -u +%T)"
 done
done
