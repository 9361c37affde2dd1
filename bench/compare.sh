#!/bin/bash
# The README's benchmark table: smarthostd beside gdnsd, Knot, NSD, PowerDNS and hickory-dns
# (each when installed) and the floor (the least a UDP server can cost), on one workload.
#
# What it measures
#   Builds smarthostd (cargo build --release, at nice 10), waits until no other dnsperf runs on
#   the machine (two load tests at once make both worthless), then runs bench/peers.py: the bench
#   workload (smarthost.internal; oxford, cambridge, london; 5 fake relays on 127.0.46.x:25),
#   every server on 127.0.0.1:5380-5386, dnsperf `-c 8 -T 1 -q 100 -l DURATION` pinned to CPU 0
#   and the server's every thread to CPU 1, RUNS runs with the server order rotated, for oxford
#   MX, mail1.oxford A and oxford A over UDP, then oxford MX over TCP for smarthostd beside Knot,
#   then the DO workload (dnsperf -D: oxford MX, mail1.oxford A and an NXDOMAIN with DO set) for
#   smarthostd, which signs (a key from its own keygen), beside the floor sending smarthostd's
#   signed answers byte for byte.
#   It prints medians of queries/s, average latency, queries per server CPU-second (from
#   /proc), idle RSS, and the ratios to the floor and to gdnsd; the load average at start and
#   end; whether anything else was busy during the runs.  Peer configs: bench/peers/; what each
#   column means: bench/README.md.
#
# How to run (as root: the fake relays listen on port 25)
#   bench/setup.sh                         # once: the Debian packages
#   bench/compare.sh [OUTDIR]              # default OUTDIR /tmp/smarthostd-peers-<time>
#   RUNS=3 DURATION=10 bench/compare.sh
#   SERVERS=floor,gdnsd,smarthostd bench/compare.sh      # default: every server peers.py knows
#   SKIP_BUILD=1 SKIP_TCP=1 SKIP_DO=1 OUTDIR=/tmp/x bench/compare.sh
#   WAIT_IDLE=1200 (s to wait for another dnsperf to end, polled every 30 s; then it refuses)
#   HICKORY_BIN=/path/to/hickory-dns       # the hickory-dns row, when you have a binary
# Takes about (3 × servers + 2 + 6) × RUNS × (DURATION + 1) s: ~13 min with the defaults.
# Bounded: the run is wrapped in `timeout` (twice the planned time + 5 min); peers.py stops what
# it started by PID, and on exit this script stops by PID any server it left (OUTDIR/pids/).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PY=/usr/bin/python3
OUTDIR=${1:-${OUTDIR:-/tmp/smarthostd-peers-$(date +%Y%m%d-%H%M%S)}}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
SERVERS=${SERVERS:-floor,gdnsd,knot,nsd,pdns,hickory,smarthostd}
WAIT_IDLE=${WAIT_IDLE:-1200}
for v in RUNS DURATION WAIT_IDLE; do
  case "${!v}" in ''|*[!0-9]*) echo "$v must be a whole number" >&2; exit 2 ;; esac
done
[ "$RUNS" -ge 1 ] && [ "$RUNS" -le 10 ] || { echo "RUNS must be 1..10" >&2; exit 2; }
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 60 ] || { echo "DURATION must be 1..60" >&2; exit 2; }
[ -x "$PY" ] || { echo "$PY missing (Debian's python3; bench/setup.sh)" >&2; exit 2; }
TCP_SERVERS=knot,smarthostd
[ "${SKIP_TCP:-0}" = 1 ] && TCP_SERVERS=""
DO_QTYPES=oxford-MX-DO,mail1-A-DO,nope-DO
[ "${SKIP_DO:-0}" = 1 ] && DO_QTYPES=""
mkdir -p "$OUTDIR"

child=""
cleanup() {
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  # servers peers.py could not stop (it was killed): by the PIDs it recorded, if still theirs
  for f in "$OUTDIR"/pids/*.pid; do
    [ -e "$f" ] || continue
    read -r pid name < "$f" || continue
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$name"; then
      echo "stopping leftover $name (pid $pid)" >&2
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== nice -n 10 cargo build --release" >&2
  (cd "$ROOT" && nice -n 10 cargo build --release) >&2
fi

# Another load test running?  Wait for it (bounded), never run beside it.
polls=$(( WAIT_IDLE / 30 ))
for i in $(seq 0 "$polls"); do
  others=$(pgrep -x dnsperf | tr '\n' ' ' || true)
  [ -z "$others" ] && break
  if [ "$i" = "$polls" ]; then
    echo "another dnsperf is still running (pids $others) after ${WAIT_IDLE}s: not measuring" >&2
    exit 1
  fi
  echo "$(date +%T) another dnsperf is running (pids $others): waiting 30 s ($((i + 1))/$polls)" >&2
  sleep 30
done

nsrv=$(echo "$SERVERS" | tr ',' '\n' | grep -c .)
ntcp=$(echo "$TCP_SERVERS" | tr ',' '\n' | grep -c . || true)
ndo=$(( $(echo "$DO_QTYPES" | tr ',' '\n' | grep -c . || true) * 2 ))
about=$(( (3 * nsrv + ntcp + ndo) * RUNS * (DURATION + 1) + 30 ))
bound=$(( 2 * ((3 * nsrv + ntcp + ndo) * RUNS * (DURATION + 3) + 120) + 300 ))
{ echo "start $(date '+%F %T %Z'): $(uptime)"; } > "$OUTDIR/host.txt"
echo "== bench/peers.py: servers $SERVERS; TCP ${TCP_SERVERS:-none}; $RUNS runs × ${DURATION}s;" \
     "about ${about}s (bound ${bound}s); load average $(cut -d' ' -f1-3 /proc/loadavg); out $OUTDIR" >&2
timeout --kill-after=30 "$bound" "$PY" "$HERE/peers.py" "$OUTDIR" --servers "$SERVERS" \
  --runs "$RUNS" --duration "$DURATION" --tcp-servers "$TCP_SERVERS" --do-qtypes "$DO_QTYPES" \
  > "$OUTDIR/stdout.md" 2> "$OUTDIR/peers.log" &
child=$!
echo "   progress: tail -f $OUTDIR/peers.log" >&2
rc=0
wait "$child" || rc=$?
child=""
echo "end $(date '+%F %T %Z'): $(uptime)" >> "$OUTDIR/host.txt"
if [ "$rc" != 0 ]; then
  echo "bench/peers.py failed (exit $rc); last lines of $OUTDIR/peers.log:" >&2
  tail -20 "$OUTDIR/peers.log" >&2
  exit "$rc"
fi
cat "$OUTDIR/report.md"
echo
cat "$OUTDIR/host.txt"
echo "raw figures: $OUTDIR/results.json; log: $OUTDIR/peers.log"
