#!/usr/bin/env bash
# What stops P2 on this machine (docs/quality.md P2; bench/README.md, "P2's floor"): the
# durable-commit probe of bench/bars_push.sh (one pgbench client committing a one-row
# INSERT open loop at PROBE_RATE/s, 400 by default) for `seconds` in three settings, one
# after the other on one private Postgres with production settings (bench/lib.sh):
#   1. alone: what the disk does with nothing else running;
#   2. beside the gateway's pushes, open loop at `rate` (default: half the median of two
#      P1 runs, as P2 itself);
#   3. beside pgbench running P1's hand-written per-push transaction open loop at 60 % of
#      that rate (64 clients, prepared): the same rows written one push per transaction.
#      At the full rate it falls behind (bench/README.md, P2's runs), so it would measure
#      its own queue, not the disk.
# For each: the probe's p50/p99/max and its stalls (probe commits over 25 ms, grouped when
# less than 0.2 s apart, with their times), the WAL written and the WAL syncs per
# operation (pg_stat_wal, PostgreSQL 15 docs 28.2.13: wal_bytes, wal_sync), and the
# kernel's dirty and under-writeback page cache (/proc/meminfo Dirty, Writeback; Linux
# Documentation/filesystems/proc.rst), sampled every 0.5 s, largest per 10 s; with the
# kernel's writeback settings (vm.dirty_*; Linux Documentation/admin-guide/sysctl/vm.rst).
# No bar, no verdict: a diagnosis, about 4 minutes with the defaults.
# Needs: cargo build --release --bin shipgate --example ecom_push; wrk; pgbench; psql; jq; python3.
# Usage: bench/p2_floor.sh [seconds=60] [rate]
set -euo pipefail
cd "$(dirname "$0")/.."
LONG=${1:-60}
RATE=${2:-}
RUNS=2
SECS=10
PORT=${BENCH_PORT:-18191}
BASE="http://127.0.0.1:$PORT"
export SHIPGATE_DATABASE_MAX_CONNECTIONS=${POOL:-32}
source bench/inbound_lib.sh
source bench/bars_push.sh
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk"; exit 1; }
WORK=$(mktemp -d)
MEMS=
trap '[ -n "$MEMS" ] && kill $MEMS 2>/dev/null; kill $GW_PID 2>/dev/null || true; private_pg_stop immediate; rm -rf "$WORK"' EXIT
push_stack_up
push_setup >/dev/null
if [ -z "$RATE" ]; then
  p1_measure empty >/dev/null
  RATE=$(calc %d "$P1_GW/2")
fi
PGRATE=$(calc %d "$RATE*0.6")
commit_probe_setup
echo "machine: $(nproc) cores, $(uname -r); kernel writeback: $(for k in dirty_background_ratio dirty_background_bytes \
  dirty_ratio dirty_expire_centisecs dirty_writeback_centisecs; do printf '%s=%s ' "$k" "$(cat /proc/sys/vm/$k)"; done)"

mem_sampler() { # every 0.5 s: epoch seconds, Dirty kB, Writeback kB
  while true; do
    echo "$(date +%s.%N) $(awk '/^Dirty:/ {d=$2} /^Writeback:/ {w=$2} END {print d, w}' /proc/meminfo)"
    sleep 0.5
  done
}
mem_sampler >"$WORK/mem" &
MEMS=$!

wal() { psql "$DB_URL" -qAtc "SELECT wal_bytes, wal_sync FROM pg_stat_wal"; }
report() { # $1 label, $2 $3 pg_stat_wal before/after, $4 operations besides the probe's commits
  python3 - "$WORK/probe" "$WORK/mem" "$1" "$2" "$3" "$4" "$PROBE_RATE" "$LONG" <<'PY'
import sys, time
probe, mem, label, w0, w1, ops, prate, secs = sys.argv[1:9]
rows = sorted(tuple(map(float, l.split())) for l in open(probe))
lat = sorted(r[1] for r in rows)
q = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))]
print('  probe: %d commits, p50 %.2f ms, p99 %.2f ms, max %.1f ms; %d over 25 ms' % (
    len(lat), q(.5), q(.99), lat[-1], sum(1 for x in lat if x > 25)))
stalls = []
for at, l in rows:
    if l > 25:
        if stalls and at - stalls[-1][1] < 0.2:
            stalls[-1][1] = at; stalls[-1][2] = max(stalls[-1][2], l); stalls[-1][3] += 1
        else:
            stalls.append([at, at, l, 1])
hms = lambda t: time.strftime('%H:%M:%S', time.gmtime(t)) + '.%d' % int(t % 1 * 10)
print('  stalls (start, longest commit, commits over 25 ms): %d%s' % (len(stalls), ''.join(
    '\n    %s  %4.0f ms  %4d' % (hms(a), m, c) for a, _, m, c in stalls)))
b0, s0 = map(float, w0.split('|')); b1, s1 = map(float, w1.split('|'))
n = int(ops) + int(prate) * int(secs)
if int(ops):
    print('  WAL per operation (%d of them besides the probe\'s %d commits): %.0f bytes, %.3f syncs; %.1f MB/s' % (
        int(ops), int(prate) * int(secs), (b1 - b0) / n, (s1 - s0) / n, (b1 - b0) / 1e6 / int(secs)))
t0, t1 = rows[0][0], rows[-1][0]
win = {}
for l in open(mem):
    t, d, w = l.split()
    t = float(t)
    if t0 <= t <= t1 + 1:
        k = int(t // 10 * 10); dm, wm = win.get(k, (0, 0)); win[k] = (max(dm, int(d)), max(wm, int(w)))
print('  page cache per 10 s, largest dirty / under writeback (MB): ' + ', '.join(
    '%s %d/%d' % (time.strftime('%H:%M:%S', time.gmtime(k)), d / 1024, w / 1024) for k, (d, w) in sorted(win.items())))
PY
}

echo "== 1. the probe alone for ${LONG}s"
w0=$(wal); commit_probe_log "$LONG" "$WORK/probe"; w1=$(wal); report alone "$w0" "$w1" 0

echo "== 2. the probe beside the gateway's pushes at $RATE/s (open loop) for ${LONG}s"
w0=$(wal)
commit_probe_log "$LONG" "$WORK/probe" &
P=$!
line=$("$EX" rate "$URL" "$EUSER" "$EPASS" "$RATE" "$LONG" "$AWBS" 2>/dev/null)
wait "$P"
w1=$(wal)
echo "  pushes: $line"
report gateway "$w0" "$w1" $((RATE * LONG))

echo "== 3. the probe beside pgbench's per-push transaction at $PGRATE/s (open loop, 64 clients) for ${LONG}s"
w0=$(wal)
commit_probe_log "$LONG" "$WORK/probe" &
P=$!
push_txn_pgbench -R "$PGRATE" -T "$LONG" >"$WORK/pgb" 2>&1 || { tail "$WORK/pgb"; exit 1; }
wait "$P"
w1=$(wal)
echo "  pgbench: $(grep -E '^tps' "$WORK/pgb"); $(grep -E 'latency average' "$WORK/pgb"); $(grep -E 'schedule lag' "$WORK/pgb")"
report pgbench "$w0" "$w1" $((PGRATE * LONG))
echo "== checkpoints during the script (server log)"
grep -E "checkpoint (starting|complete)" "$PGHOME/server.log" | sed 's/^/  /' || echo "  none"
