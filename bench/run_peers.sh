#!/usr/bin/env bash
# Runs the shared peer benchmark (../shared/bench-peers) with Conveyor's adapters added.
#   bench/run_peers.sh                      # every peer + baselines (~20 min)
#   bench/run_peers.sh --quick --peers conveyor_sqlite,huey_sqlite --skip-baselines
#   BENCH_BASE=0303058 bench/run_peers.sh --peers conveyor_base_pg,conveyor_pg --skip-baselines
# The harness is copied to $BENCH_HOME (default /tmp/bench-peers) because shared/ is read-only;
# Conveyor is installed into its own virtualenv there (.venv-conveyor), as the harness asks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
home="${BENCH_HOME:-/tmp/bench-peers}"
src="${BENCH_PEERS:-$repo/../shared/bench-peers}"
if [ ! -f "$home/bench.py" ]; then
  mkdir -p "$home" && cp -r "$src/." "$home/" && chmod -R u+w "$home"
fi
if [ ! -x "$home/.venv-peers/bin/python" ]; then
  PY312="${PY312:-$(ls -d "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.12*/bin/python 2>/dev/null | head -n 1)}" \
    BENCH_HOME="$home" "$home/setup.sh"
fi
if [ ! -x "$home/.venv-conveyor/bin/python" ]; then python3 -m venv "$home/.venv-conveyor"; fi
"$home/.venv-conveyor/bin/pip" install -q -e "$repo[postgres]"
if [ -n "${BENCH_BASE:-}" ]; then  # an earlier commit for the conveyor_base_* adapters (A/B)
  rm -rf "$home/conveyor-base" && mkdir -p "$home/conveyor-base"
  git -C "$repo" archive "$BENCH_BASE" | tar -x -C "$home/conveyor-base"
  if [ ! -x "$home/.venv-conveyor-base/bin/python" ]; then python3 -m venv "$home/.venv-conveyor-base"; fi
  "$home/.venv-conveyor-base/bin/pip" install -q "$home/conveyor-base[postgres]"
fi
cp "$here"/peers/conveyor_*.py "$home/adapters/"
cd "$home"
BENCH_HOME="$home" exec "$home/.venv-peers/bin/python" "$home/bench.py" "$@"
