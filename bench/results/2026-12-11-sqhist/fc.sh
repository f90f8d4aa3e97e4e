#!/bin/bash
# callgrind of bench/fold_cost.py for one variant ($1: /tmp/sqhist/v_$1), $2 = tag, rest: args
# insert/row = (Ir(3000) - Ir(1000)) / 2000; fold/row = (Ir(3000 --fold) - Ir(3000)) / 3000
set -u
v=$1; tag=$2; shift 2
ir() {  # $1 = name, rest = args
  local name=$1; shift
  PYTHONHASHSEED=0 PYTHONPATH=/tmp/sqhist/v_$v nice valgrind --tool=callgrind \
    --callgrind-out-file=/tmp/sqhist/cg/fc.$v.$tag.$name.out \
    /work/main/.venv/bin/python /work/wt-sqhist/bench/fold_cost.py "$@" >/dev/null 2>&1
  grep -h '^summary:' /tmp/sqhist/cg/fc.$v.$tag.$name.out | awk '{print $2}'
}
a=$(ir 1000 --rows 1000 "$@"); b=$(ir 3000 --rows 3000 "$@"); c=$(ir 3000f --rows 3000 --fold "$@")
echo "fc.$v.$tag 1000:$a 3000:$b 3000fold:$c insert/row:$(( (b - a) / 2000 )) fold/row:$(( (c - b) / 3000 )) args:$*" >> /tmp/sqhist/cg/totals.txt
