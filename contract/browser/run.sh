#!/usr/bin/env bash
# The ops console in a real browser (issue 14): Debian's chromium driven by selenium
# (PyPI, in its own virtualenv) against `shipgate sandbox` on a fresh database, with the
# carrier simulators and the console demo activity. console_check.py signs in, finds a
# shipment by reference, opens its timeline, retries a failed webhook delivery and sees
# it succeed, and checks the pages at desktop and phone width.
#
# Screenshots go to $SHIPGATE_BROWSER_SCREENSHOTS (default target/contract-browser/shots);
# `SHIPGATE_BROWSER_SCREENSHOTS=docs/console bash contract/browser/run.sh` refreshes the
# README's. Needs: Python >= 3.11 with venv and pip, cargo; chromium and chromium-driver
# are installed with apt-get when missing (as .ci/run does for Postgres).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=contract/browser
OUT=${SHIPGATE_BROWSER_OUT:-target/contract-browser}
SHOTS=${SHIPGATE_BROWSER_SCREENSHOTS:-$OUT/shots}
VENV=target/contract-venv-browser
PORT=${SHIPGATE_BROWSER_PORT:-18181}

log() { printf '== browser check: %s\n' "$*"; }

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  log "installing chromium and chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
fi

want=$(cat "$HERE/requirements.txt" "$HERE/constraints.txt" | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  log "installing selenium into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"
  echo "$want" >"$VENV/.requirements.sha256"
fi

log "building the gateway"
SQLX_OFFLINE=true cargo build --locked -q -p shipgate --bin shipgate
BIN="$(pwd)/target/debug/shipgate"
mkdir -p "$OUT" "$SHOTS"

# A fresh database on the tests' Postgres, dropped on every exit; without one the
# sandbox starts a private Postgres under $OUT.
ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB_NAME="sgc_browser_$(date +%s)_$$"
DB_URL=""
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
  fi
  if [ -n "$DB_URL" ]; then
    psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 ||
      echo "could not drop database $DB_NAME" >&2
  fi
  rm -rf "$OUT/sandbox"
}
trap cleanup EXIT
if command -v psql >/dev/null 2>&1 && psql "$ADMIN_URL" -qAtc "SELECT 1" >/dev/null 2>&1; then
  psql "$ADMIN_URL" -qc "CREATE DATABASE \"$DB_NAME\"" >/dev/null
  DB_URL="${ADMIN_URL%/*}/$DB_NAME"
  log "database $DB_NAME"
fi

rm -rf "$OUT/sandbox"
(
  if [ -n "$DB_URL" ]; then export DATABASE_URL="$DB_URL"; else unset DATABASE_URL; fi
  export SHIPGATE_LISTEN="127.0.0.1:$PORT" RUST_LOG="${RUST_LOG:-warn}"
  exec "$BIN" sandbox --data-dir "$OUT/sandbox" --sim-clock-secs 0
) >"$OUT/sandbox.out" 2>"$OUT/sandbox.log" &
PID=$!
for _ in $(seq 1 600); do
  grep -q "console demo activity seeded" "$OUT/sandbox.out" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { cat "$OUT/sandbox.log" >&2; echo "the sandbox exited" >&2; exit 1; }
  sleep 0.2
done
grep -q "console demo activity seeded" "$OUT/sandbox.out" || { echo "the sandbox's demo activity did not finish" >&2; exit 1; }
KEY=$(sed -n 's/.*API key (tenant [^)]*): *\(sg_[A-Za-z0-9_]*\).*/\1/p' "$OUT/sandbox.out" | head -1)
[ -n "$KEY" ] || { echo "no API key in the sandbox banner" >&2; exit 1; }
log "sandbox up at http://127.0.0.1:$PORT; chromium $(chromium --version 2>/dev/null | awk '{print $2}')"

"$VENV/bin/python" "$HERE/console_check.py" --base "http://127.0.0.1:$PORT" --key "$KEY" --screenshots "$SHOTS"
log "passed; screenshots in $SHOTS"
