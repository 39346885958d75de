#!/usr/bin/env bash
# The carriers' own judges over what the gateway sends (issue 8), after the tests:
#
#   1. contract/aftership/run.sh: the official AfterShip SDK pinned to API 2024-04
#      (aftership-tracking-sdk 2.0.2) judges the AfterShip simulator, then every request
#      the gateway sent it during the tests (check_requests.py on aftership-*.jsonl);
#   2. contract/ecomdash/run.sh: ecomdash's own JSON Schema and field table (seed 004)
#      judge the golden fixtures, then every body the gateway sent (ecomdash-*.jsonl).
#
# The request logs are written by the API tests' harness when SHIPGATE_CONTRACT_LOG_DIR
# is set (crates/shipgate/tests/api/helpers.rs, ContractLog): `.ci/run` sets it before
# `cargo test --locked`. Without the variable this reads <target>/contract-requests.
# A run that finds no recorded request for a carrier fails: the judges must have
# something to judge.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."

target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
dir="${SHIPGATE_CONTRACT_LOG_DIR:-$target/contract-requests}"

# The recorded requests of one carrier: its files, or a failure naming what is missing.
recorded() {
  local carrier="$1" files lines
  files=$(find "$dir" -maxdepth 1 -type f -name "$carrier-*.jsonl" 2>/dev/null | sort)
  if [ -z "$files" ]; then
    echo "contract: no $carrier-*.jsonl in $dir: run the tests with SHIPGATE_CONTRACT_LOG_DIR=$dir first" >&2
    return 1
  fi
  # shellcheck disable=SC2086
  lines=$(cat $files | grep -c . || true)
  if [ "$lines" -eq 0 ]; then
    echo "contract: the $carrier request logs in $dir hold no request" >&2
    return 1
  fi
  echo "== contract: $lines $carrier request(s) recorded by the tests in $(echo "$files" | wc -l) file(s)" >&2
  echo "$files"
}

aftership=$(recorded aftership)
ecomdash=$(recorded ecomdash)

echo "== contract: AfterShip (contract/aftership/run.sh)"
# shellcheck disable=SC2086
bash contract/aftership/run.sh $aftership

echo "== contract: ecomdash (contract/ecomdash/run.sh)"
# Every verdict but the passing ones (the failures name file:line and the field).
# shellcheck disable=SC2086
bash contract/ecomdash/run.sh --requests $ecomdash | grep -v '^ok   '
