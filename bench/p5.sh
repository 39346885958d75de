#!/usr/bin/env bash
# docs/quality.md P5: signed webhook deliveries per second to a local receiver, drained in
# order of due time. Runs examples/p5_webhooks.rs (release): per run it writes N events,
# fans them out with the dispatcher, spreads the deliveries' due times at random over
# the past hour, then starts the production delivery worker and times it until every
# delivery succeeded; prints each run, the arrival-order displacement against the due
# order, and the median.
# Usage: bench/p5.sh [events=20000] [runs=5] [concurrency=128]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
RUNS=${2:-5}
CONC=${3:-128}
ADMIN=${BENCH_DATABASE_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
cargo build -q --release --example p5_webhooks
BIN=${CARGO_TARGET_DIR:-target}/release/examples/p5_webhooks
RUST_LOG=warn "$BIN" "$ADMIN" "$N" "$RUNS" "$CONC"
