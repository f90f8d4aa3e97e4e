#!/bin/bash
set -u
for n in 1000 3000; do
 for v in noidx all; do
  extra=(--drop-index conveyor_jobs_listed --drop-index conveyor_jobs_running_ids); envs=(PYTHONHASHSEED=0 PYTHONPATH=/work/wt-sqgap/src)
  [ $v = all ] && envs+=(CONVEYOR_HISTORY=false) && extra+=(--drop-triggers)
  env "${envs[@]}" nice valgrind --tool=callgrind --callgrind-out-file=/tmp/sqgap/cg/ko.$v.$n.out \
    /work/main/.venv/bin/python /work/wt-sqgap/bench/gap_profile.py --jobs $n "${extra[@]}" >/tmp/sqgap/cg/ko.$v.$n.stdout 2>/tmp/sqgap/cg/ko.$v.$n.err
  echo "$v $n done $(date -u +%T)"
 done
done
