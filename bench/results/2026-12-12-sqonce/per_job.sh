#!/bin/bash
# instructions per job from cg.sh's files: (Ir(3000) - Ir(1000)) / 2000, per tree, mode, run
cd /tmp/sqonce/cg || exit 1
for f in *.1000.out; do
  base=${f%.1000.out}
  [ -f "$base.3000.out" ] || continue
  a=$(grep -m1 '^summary:' "$f" | cut -d' ' -f2); b=$(grep -m1 '^summary:' "$base.3000.out" | cut -d' ' -f2)
  [ -n "$a" ] && [ -n "$b" ] && echo "$base $(( (b - a) / 2000 ))"
done
