#!/usr/bin/env bash
# The official AfterShip SDK (API 2024-04) as the judge of the AfterShip simulator.
#
#   contract/aftership/run.sh [--write-fixtures] [REQUESTS.jsonl ...]
#
# Creates (or reuses) a Python venv under <target>/contract-venv with the pinned SDK,
# builds and starts the shipgate-sims binary on a free port, runs check_sdk.py against
# its /aftership mount, stops it, then runs check_requests.py on any JSON-lines files
# given (requests recorded elsewhere, e.g. by the gateway's tests). Needs python3 (3.8+)
# with venv and pip, and PyPI; nothing else from the internet.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

write_fixtures=()
files=()
for arg in "$@"; do
  case "$arg" in
    --write-fixtures) write_fixtures=(--write-fixtures) ;;
    *) files+=("$(realpath "$arg")") ;;
  esac
done

target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
venv="$target/contract-venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== creating $venv with aftership-tracking-sdk 2.0.2"
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi

echo "== building shipgate-sims"
cargo build --quiet -p shipgate-sims --bin shipgate-sims
log="$(mktemp)"
"$target/debug/shipgate-sims" 127.0.0.1:0 >"$log" 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; rm -f "$log"' EXIT
addr=""
for _ in $(seq 1 100); do
  addr="$(sed -n 's/^shipgate-sims listening on //p' "$log")"
  [ -n "$addr" ] && break
  kill -0 "$sim_pid" 2>/dev/null || { cat "$log"; echo "shipgate-sims exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$log"; echo "shipgate-sims did not start" >&2; exit 1; }

echo "== check_sdk.py against $addr/aftership"
(cd "$here" && "$venv/bin/python" check_sdk.py --base "$addr/aftership" "${write_fixtures[@]}")

if [ "${#files[@]}" -gt 0 ]; then
  echo "== check_requests.py ${files[*]}"
  (cd "$here" && "$venv/bin/python" check_requests.py "${files[@]}")
fi
