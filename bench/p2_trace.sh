#!/usr/bin/env bash
# Where P2's slow pushes come from (docs/quality.md P2; bench/README.md, "P2 traced").
# P1's load once (as bench/p1.sh, so the database is in the state P2 meets), then `runs`
# P2 runs at half its median rate, each with, side by side:
# - the pusher's slow windows (100 ms windows of send times holding a push over 25 ms);
# - the gateway's own phase timings per scan group (queue, statements, COMMIT: its debug
#   log, target shipgate::inbound::timing), summarised, and the slowest groups listed;
# - what the server's backends were doing: pg_stat_activity sampled every 10 ms, each
#   wait event's share of the samples in the slow windows against the others;
# - the durable-commit probe of bench/bars_push.sh (one-row commits at 400/s).
# No bar, no verdict: a diagnosis. The 10 ms sampler and the debug log add a little load.
# Needs: cargo build --release --bin shipgate --example ecom_push; wrk; pgbench; psql; jq; python3.
# Usage: bench/p2_trace.sh [runs=3] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-10}
PORT=${BENCH_PORT:-18191}
BASE="http://127.0.0.1:$PORT"
export SHIPGATE_DATABASE_MAX_CONNECTIONS=${POOL:-32}
export RUST_LOG=warn,shipgate::inbound::timing=debug
source bench/inbound_lib.sh
source bench/bars_push.sh
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk"; exit 1; }
WORK=$(mktemp -d)
trap 'kill $GW_PID 2>/dev/null || true; private_pg_stop immediate; rm -rf "$WORK"' EXIT
push_stack_up
push_setup >/dev/null
RUNS=2 p1_measure empty
rate=$(calc %d "$P1_GW/2")
commit_probe_setup
# One sample: the time, then each active client backend of the bench database (but the
# sampler's own) as wait event (CPU when none) / the first word of its statement.
SAMPLE="SELECT to_char(clock_timestamp(), 'HH24:MI:SS.MS') || '|' || coalesce(string_agg(
  coalesce(wait_event_type || ':' || wait_event, 'CPU') || '/' || substring(ltrim(query) from '^[A-Za-z]+'), ' '), '')
  FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'active'
  AND pid <> pg_backend_pid() AND datname = 'p1'"
for i in $(seq "$RUNS"); do
  : >"$WORK/gw.log"
  printf '%s\n' '\pset format unaligned' '\pset tuples_only on' "$SAMPLE \\watch 0.01" |
    timeout "$((SECS + 1))" psql "$DB_URL" -q >"$WORK/waits" 2>/dev/null &
  SAMPLER=$!
  commit_probe "$SECS" >"$WORK/probe_p99" &
  PROBE=$!
  line=$("$EX" rate "$URL" "$EUSER" "$EPASS" "$rate" "$SECS" "$AWBS" 2>"$WORK/slow")
  wait "$PROBE"; wait "$SAMPLER" || true
  echo "== run $i: $line; durable commit p99 $(cat "$WORK/probe_p99") ms"
  python3 - "$WORK/slow" "$WORK/gw.log" "$WORK/waits" <<'PY'
import collections, re, sys
slow_file, gw_file, waits_file = sys.argv[1:4]
# Slow windows (send time, 100 ms), and the window after each: a push sent in one is
# answered in the next.
slow = {}
for l in open(slow_file):
    m = re.search(r'T(\d\d:\d\d:\d\d\.\d)\d*Z: (\d+) pushes over 25 ms, max (\d+) ms', l)
    if m:
        slow[m.group(1)] = (int(m.group(2)), int(m.group(3)))
def nxt(w):
    h, m, s = w.split(':'); t = round(int(h) * 3600 + int(m) * 60 + float(s) + 0.1, 1)
    return '%02d:%02d:%04.1f' % (t // 3600, t % 3600 // 60, t % 60)
stalled = {w for w, (n, _) in slow.items() if n >= 10} | {nxt(w) for w, (n, _) in slow.items() if n >= 10}
print('  slow windows (>= 10 pushes over 25 ms): ' + ('; '.join(
    '%s %d max %d ms' % (w, n, mx) for w, (n, mx) in sorted(slow.items()) if n >= 10) or 'none'))
ansi = re.compile(r'\x1b\[[0-9;]*m')
groups = []
for l in open(gw_file):
    l = ansi.sub('', l)
    if 'scan group' not in l:
        continue
    f = {k: float(v) for k, v in re.findall(r'(\w+)=([\d.]+)', l)}
    f['at'] = l.split()[0][11:23]
    groups.append(f)
phases = ['queue_ms', 'statements_ms', 'commit_ms', 'answer_ms']
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(len(v) * p))] if v else float('nan')
many = [g for g in groups if g['size'] > 1]
print('  groups: %d (%d of one scan), scans per group p50 %d p90 %d' % (
    len(groups), len(groups) - len(many), pct([g['size'] for g in groups], .5), pct([g['size'] for g in groups], .9)))
for k in phases:
    v = [g[k] for g in many]
    print('    %-14s p50 %6.2f  p99 %6.2f  max %6.2f ms' % (k, pct(v, .5), pct(v, .99), max(v, default=0)))
print('  slowest groups (queue + statements + commit):')
for g in sorted(many, key=lambda g: -(g['queue_ms'] + g['statements_ms'] + g['commit_ms']))[:8]:
    print('    %s size %2d  queue %6.1f  statements %6.1f  commit %6.1f ms' % (
        g['at'], g['size'], g['queue_ms'], g['statements_ms'], g['commit_ms']))
counts = {True: collections.Counter(), False: collections.Counter()}
n = {True: 0, False: 0}
for l in open(waits_file):
    if '|' not in l:
        continue
    at, rest = l.rstrip('\n').split('|', 1)
    inside = at[:10] in stalled
    n[inside] += 1
    counts[inside].update(rest.split())
print('  server backends per 10 ms sample (mean), in the slow windows (%d samples) / elsewhere (%d):' % (n[True], n[False]))
for k in sorted(set(counts[True]) | set(counts[False]), key=lambda k: -counts[True][k] / max(n[True], 1))[:12]:
    print('    %-40s %5.2f / %5.2f' % (k, counts[True][k] / max(n[True], 1), counts[False][k] / max(n[False], 1)))
PY
done
