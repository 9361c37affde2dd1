#!/bin/bash
# Soak test: smarthostd under steady DNS load while its smart hosts flap.
#
# What it does (bounded: --seconds, default 120)
#   * 5 fake SMTP relays (bench workload: oxford 2, cambridge 2, london 1) on 127.0.45.x:25,
#     run by bench/soak_helper.py, with a chaos loop: every 100-500 ms one random relay fails
#     (refused: listener closed, sessions dropped; or hung: accepts TCP, never greets) or comes
#     back.  smarthostd probes them with an aggressive config so states flap a lot:
#     [probe] interval 200ms, timeout 200ms, rise 2, fall 2.  DNS on 127.0.0.1:5394, admin on
#     127.0.0.1:8094.
#   * dnsperf (Debian package) for the whole run on the 3 site MX names and the 5 host A names,
#     `-c 4 -T 1 -q 100 -Q $QPS` (default QPS 20000, leaving CPU for the probes and the chaos on
#     2 shared cores; QPS=0 = unlimited).  dnsperf reports response codes.
#   * a checker (dnspython, EDNS0) querying every 20 ms: counts empty answers (NOERROR without
#     records - invisible to dnsperf), NXDOMAIN, SERVFAIL, timeouts, and MX answers without the
#     exchanges' addresses.
#   * every second: smarthostd's VmRSS and open fds (/proc/PID/fd).  /metrics before and after:
#     smarthostd_transitions_total, smarthostd_snapshot_generation, probes, SERVFAIL/NXDOMAIN.
#   Asserts: no SERVFAIL, no empty MX answer, no NXDOMAIN for a configured name, RSS growth
#   < 10 % (average of the first 10 s of load vs the last 10 s), fds stable (last-10-s average at
#   most 5 above the first), no panic in the log, smarthostd alive to the end.  Prints
#   queries/s and the counts; exits 1 when an assertion fails.
#
# How to run
#   bench/soak.sh                 # 120 s
#   bench/soak.sh --seconds 600   # longer; QPS=50000 bench/soak.sh; KEEP=1 keeps the work dir
#   Options (env or flags): --seconds N, DNS_PORT, ADMIN_PORT, NET (default 127.0.45), QPS.
# Needs: target/release/smarthostd (cd /work/main && cargo build --release), dnsperf,
# Debian's /usr/bin/python3 (python3-dnspython), root for port 25.  Every process is started
# in the background with its PID kept, and stopped by PID on exit (trap).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PY=/usr/bin/python3
BIN=${SMARTHOSTD_BIN:-$ROOT/target/release/smarthostd}
DUR=${SOAK_SECONDS:-120}
DNS_PORT=${DNS_PORT:-5394}
ADMIN_PORT=${ADMIN_PORT:-8094}
NET=${NET:-127.0.45}
QPS=${QPS:-20000}
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) DUR=$2; shift 2 ;;
    --seconds=*) DUR=${1#*=}; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$DUR" in ''|*[!0-9]*) echo "--seconds must be a whole number" >&2; exit 2 ;; esac
if [ "$DUR" -lt 30 ] || [ "$DUR" -gt 3600 ]; then echo "--seconds must be 30..3600" >&2; exit 2; fi
[ -x "$BIN" ] || { echo "no $BIN: cd $ROOT && cargo build --release" >&2; exit 2; }
command -v dnsperf >/dev/null || { echo "dnsperf missing (apt-get install dnsperf)" >&2; exit 2; }
case "$NET" in 127.*) ;; *) echo "NET must be loopback" >&2; exit 2 ;; esac

W=$(mktemp -d /tmp/smarthostd-soak.XXXXXX)
PIDS=()
SHD=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$SHD" ] && kill -0 "$SHD" 2>/dev/null; then kill "$SHD" 2>/dev/null || true; fi
  for p in "${PIDS[@]}" $SHD; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ports free? (refuses to start beside another run holding them)
$PY "$HERE/common.py" ports-free "127.0.0.1:$DNS_PORT" "127.0.0.1:$ADMIN_PORT" \
  "$NET.11:25" "$NET.12:25" "$NET.21:25" "$NET.22:25" "$NET.31:25"

$PY "$HERE/soak_helper.py" config --dir "$W" --dns-port "$DNS_PORT" --admin-port "$ADMIN_PORT" --net "$NET" >/dev/null
{ echo "start $(cut -d' ' -f1-3 /proc/loadavg)"; } > "$W/load.txt"

# relays + chaos: run a little longer than the load, so the chaos covers all of it
$PY "$HERE/soak_helper.py" relays --net "$NET" --seconds $((DUR + 4)) --ready "$W/relays.ready" \
  --out "$W/relays.json" > "$W/relays.log" 2>&1 &
REL=$!; PIDS+=($REL)
for _ in $(seq 1 100); do [ -e "$W/relays.ready" ] && break; sleep 0.1; done
[ -e "$W/relays.ready" ] || { echo "relays did not start: $(cat "$W/relays.log")" >&2; exit 1; }

NO_COLOR=1 "$BIN" serve --config "$W/smarthost.toml" > "$W/smarthostd.log" 2>&1 &
SHD=$!
ready=0
for _ in $(seq 1 100); do
  if $PY -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$ADMIN_PORT/readyz', timeout=1)" 2>/dev/null; then ready=1; break; fi
  kill -0 "$SHD" 2>/dev/null || break
  sleep 0.1
done
[ "$ready" = 1 ] || { echo "smarthostd not ready:" >&2; tail -20 "$W/smarthostd.log" >&2; exit 1; }
echo "$(date +%T) smarthostd pid $SHD ready; soak ${DUR}s, dnsperf -Q $QPS, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
$PY "$HERE/soak_helper.py" metrics --admin-port "$ADMIN_PORT" --out "$W/metrics0.json"

QARG=()
[ "$QPS" != 0 ] && QARG=(-Q "$QPS")
dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$W/queries.txt" -l "$DUR" -c 4 -T 1 -q 100 "${QARG[@]}" \
  > "$W/dnsperf.out" 2>&1 &
PERF=$!; PIDS+=($PERF)
$PY "$HERE/soak_helper.py" check --dns-port "$DNS_PORT" --seconds "$DUR" --out "$W/check.json" \
  > "$W/check.log" 2>&1 &
CHK=$!; PIDS+=($CHK)

# sampler: one line per second "t rss_kb fds", bounded by DUR iterations
t0=$(date +%s.%N)
: > "$W/samples.txt"
for i in $(seq 1 "$DUR"); do
  now=$(date +%s.%N)
  sl=$(awk -v a="$t0" -v b="$now" -v i="$i" 'BEGIN { d = a + i - b; if (d < 0) d = 0; print d }')
  sleep "$sl"
  kill -0 "$SHD" 2>/dev/null || break
  rss=$(awk '/^VmRSS:/ {print $2}' /proc/$SHD/status 2>/dev/null || echo 0)
  fds=$(ls /proc/$SHD/fd 2>/dev/null | wc -l)
  echo "$i $rss $fds" >> "$W/samples.txt"
  [ $((i % 30)) = 0 ] && echo "$(date +%T) ${i}s rss ${rss} kB fds $fds load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
echo "end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$W/load.txt"

# dnsperf and the checker end on their own (-l / --seconds); wait, bounded
for p in $PERF $CHK $REL; do
  for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
done
wait "$PERF" 2>/dev/null || true
wait "$CHK" 2>/dev/null || true
$PY "$HERE/soak_helper.py" metrics --admin-port "$ADMIN_PORT" --out "$W/metrics1.json"
if kill -0 "$SHD" 2>/dev/null; then echo yes > "$W/alive_at_end"; else echo no > "$W/alive_at_end"; fi
kill "$SHD" 2>/dev/null || true
rc=0
for _ in $(seq 1 100); do kill -0 "$SHD" 2>/dev/null || break; sleep 0.1; done
wait "$SHD" 2>/dev/null || rc=$?
echo "$rc" > "$W/exit_code"
SHD=""
set +e
$PY "$HERE/soak_helper.py" analyze --dir "$W" --seconds "$DUR" --bin "$BIN"
status=$?
exit $status
