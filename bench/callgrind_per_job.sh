#!/bin/bash
# Instructions per job under callgrind, by the difference of a 1,000- and a 3,000-job run
# (so start-up, migrations and the enqueue's fixed costs cancel out): noise-robust on a
# loaded machine (run to run ~300 instructions/job on the trip).
#
#   bench/callgrind_per_job.sh SRC trip     # bench/trip_cpu.py: the store's trip alone
#   bench/callgrind_per_job.sh SRC worker   # bench/worker_cpu.py: a worker of 10 slots
#   bench/callgrind_per_job.sh SRC loop     # bench/loop_cpu.py: the loop alone (2,000/6,000)
#
# Python's string hashes are randomised per process (dict probes move ~300-600 instructions
# a job from run to run): PYTHONHASHSEED=0 in the environment for an A/B of small changes.
#
# SRC: a tree's src/ (e.g. an old commit's, by git archive into /tmp). Prints one line.
set -euo pipefail
src=$1; bench=$2
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/work/main/.venv/bin/python}
out=$(mktemp -d)
declare -A ir
small=1000; big=3000
if [ "$bench" = loop ]; then small=2000; big=6000; fi
for n in $small $big; do
  if [ "$bench" = trip ]; then
    cmd=("$here/trip_cpu.py" --child --jobs $n --queues default)
  elif [ "$bench" = loop ]; then
    cmd=("$here/loop_cpu.py" --child --jobs $n)
  else
    cmd=("$here/worker_cpu.py" --child --jobs $n --concurrency 10)
  fi
  PYTHONPATH=$src valgrind --tool=callgrind --callgrind-out-file="$out/$n.out" \
    "$python" "${cmd[@]}" >/dev/null 2>"$out/$n.err"
  ir[$n]=$(grep -m1 "^summary:\|^totals:" "$out/$n.out" | awk '{print $2}')
done
echo "$src $bench $(( (ir[$big] - ir[$small]) / (big - small) )) instructions/job (callgrind: $out)"
