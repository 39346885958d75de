#!/usr/bin/env bash
# Runs the ecomdash contract check in its own venv (target/contract-venv-ecomdash), made on
# first use from requirements.txt. Arguments go to check.py (e.g. --requests FILE.jsonl).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/target/contract-venv-ecomdash"
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi
exec "$venv/bin/python" "$here/check.py" "$@"
