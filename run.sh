#!/usr/bin/env bash
# Set-up and entry points on a fresh machine; each installs what it needs by itself.
#   ./run.sh demo     # conveyor demo on the embedded SQLite store
#   ./run.sh test     # the whole test suite (starts PostgreSQL, installs Chromium if missing)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
py="${PYTHON:-python3}"

setup() {
  if [ ! -x "$venv/bin/python" ]; then "$py" -m venv "$venv"; fi
  local stamp="$venv/.installed" want
  want="$(cat "$here/pyproject.toml" | sha1sum | cut -c1-40)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$venv/bin/pip" install -q --upgrade pip >/dev/null
    "$venv/bin/pip" install -q -e "$here[dev]"
    echo "$want" > "$stamp"
  fi
}

start_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "starting PostgreSQL ..." >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 1; done
  fi
  echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2
  return 1
}

ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then return 0; fi
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2 || true
  fi
  [ -x /usr/bin/chromium ]
}

ensure_faketime() {  # libfaketime, for the multi-host test of a worker whose clock is off
  if compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null; then return 0; fi
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing faketime ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime) >&2 || true
  fi
  compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null
}

run_split() {  # the tests that mostly wait (long, subprocess and browser ones) in a second pytest beside the rest
  local long_log rc=0 long_rc=0 long_pid
  long_log="$(mktemp)"
  "$venv/bin/python" -m pytest "$here/tests" -m "long or beside" --durations=25 -p no:cacheprovider >"$long_log" 2>&1 &
  long_pid=$!
  "$venv/bin/python" -m pytest "$here/tests" -m "not long and not beside" --durations=25 || rc=$?
  wait "$long_pid" || long_rc=$?
  echo "---- the long, subprocess and browser tests (run beside the rest) ----"
  cat "$long_log"; rm -f "$long_log"
  [ "$rc" -eq 0 ] && [ "$long_rc" -eq 0 ]
}

case "${1:-}" in
  demo)
    shift; setup
    exec "$venv/bin/conveyor" demo "$@" ;;
  test)
    shift; setup
    if [ "${CI:-}" = "true" ]; then
      start_postgres
      ensure_chromium
      ensure_faketime
    else
      start_postgres || echo "warning: PostgreSQL tests will be skipped" >&2
      ensure_chromium || echo "warning: browser tests will be skipped" >&2
      ensure_faketime || echo "warning: the multi-host clock test will be skipped" >&2
    fi
    "$venv/bin/ruff" check "$here/src" "$here/tests" "$here/bench"
    (cd "$here" && "$venv/bin/mypy")
    if [ "$#" -gt 0 ]; then exec "$venv/bin/python" -m pytest "$here/tests" "$@"; fi
    run_split ;;
  *)
    echo "usage: ./run.sh demo | ./run.sh test [pytest args]" >&2; exit 2 ;;
esac
