#!/bin/bash
# smarthostd beside the peer DNS servers, one workload, one run, one table.
#
# What it measures
#   Builds smarthostd in release mode (cargo build --release), then runs the shared peer
#   harness ../shared/bench/throughput.py (dnsperf, UDP, `-c 8 -T 1 -q 100 -l DURATION`,
#   pinned: dnsperf on CPU 0, the server on CPU 1; RUNS runs, medians) on the bench workload
#   (oxford/cambridge/london, fake SMTP hosts on 127.0.1.x:25) for smarthostd and every peer
#   that is installed: gdnsd, knot (knotd), nsd, pdns (pdns_server), and hickory-dns when
#   $HICKORY_BIN (default /tmp/hickory-install/bin/hickory-dns) exists.  hickory-dns is NOT
#   built here: ../shared/bench/setup.sh would `cargo install hickory-dns` (long; run it
#   yourself first if you want that row).  Query types: oxford MX (the site answer) and
#   mail1.oxford A (a host answer).  Then a TCP run (DNSPERF_ARGS="-m tcp -c 8 -T 1 -q 100",
#   read by throughput.py) for oxford MX with knot and smarthostd.  Finally it reads the two
#   throughput.json files and prints one Markdown table: q/s, average latency, queries per
#   server CPU-second, idle RSS, the ratios to gdnsd in queries per CPU-second (the fair
#   figure on 2 shared cores, where dnsperf is often the bottleneck), and the TCP figures of
#   smarthostd beside Knot's.  Note the answers differ: gdnsd/knot/nsd/hickory serve a static
#   zone (gdnsd: MX 10 local.oxford + MX 20 remote.oxford), smarthostd and pdns a live one
#   with 5 MX; the "MX answer" column shows each server's answer.
#
# How to run (from anywhere; the harness is read-only and must not run twice at once)
#   bench/compare.sh [OUTDIR]          # default OUTDIR /tmp/smarthostd-compare-<time>
#   RUNS=3 DURATION=10 bench/compare.sh
#   SERVERS=knot,smarthostd bench/compare.sh      # override the peer detection
#   SKIP_BUILD=1 / SKIP_TCP=1 bench/compare.sh
# Needs: dnsperf, Debian's /usr/bin/python3 with python3-dnspython, taskset; root for
# 127.0.1.x:25.  Ports 5301-5307 and 127.0.1.{11,12,21,22,31}:25 must be free (checked).
# Bounded: dnsperf runs -l DURATION; each harness run is wrapped in `timeout`.  The harness
# stops what it started (by PID, recorded under $BENCH_RUN); the trap runs its stop-all.sh
# on this run's private BENCH_RUN only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${SHARED_BENCH:-$(cd "$ROOT/../shared/bench" && pwd)}
OUT=${1:-/tmp/smarthostd-compare-$(date +%Y%m%d-%H%M%S)}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
PY=/usr/bin/python3
export HICKORY_BIN=${HICKORY_BIN:-/tmp/hickory-install/bin/hickory-dns}
export SMARTHOSTD_BIN=$ROOT/target/release/smarthostd
OWN_RUN=0
[ -z "${BENCH_RUN:-}" ] && OWN_RUN=1
export BENCH_RUN=${BENCH_RUN:-/tmp/bench-run-smarthostd-compare.$$}
mkdir -p "$OUT"

child=""
cleanup() {
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then kill "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  BENCH_RUN=$BENCH_RUN "$SHARED/stop-all.sh" >/dev/null 2>&1 || true
  [ "$OWN_RUN" = 1 ] && rm -rf "$BENCH_RUN"   # our private harness state (server logs, pids)
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== cargo build --release" >&2
  (cd "$ROOT" && cargo build --release) >&2
fi
[ -x "$SMARTHOSTD_BIN" ] || { echo "no $SMARTHOSTD_BIN" >&2; exit 1; }

if [ -z "${SERVERS:-}" ]; then
  peers=()
  command -v gdnsd >/dev/null && peers+=(gdnsd)
  command -v knotd >/dev/null && peers+=(knot)
  command -v nsd >/dev/null && peers+=(nsd)
  command -v pdns_server >/dev/null && peers+=(pdns)
  if [ -x "$HICKORY_BIN" ]; then peers+=(hickory)
  else echo "note: hickory-dns not installed ($HICKORY_BIN); ../shared/bench/setup.sh would cargo install it (slow), skipped" >&2; fi
  SERVERS=$(IFS=,; echo "${peers[*]}${peers:+,}smarthostd")
fi
TCP_SERVERS=""
case ",$SERVERS," in *,knot,*) TCP_SERVERS="knot," ;; esac
TCP_SERVERS="${TCP_SERVERS}smarthostd"
echo "== servers: $SERVERS; TCP: $TCP_SERVERS; runs $RUNS x ${DURATION}s; out $OUT" >&2

# Refuse to start when another harness run holds the ports / addresses.
$PY - <<'EOF'
import socket, sys
busy = []
for port in range(5301, 5308):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            busy.append(f"127.0.0.1:{port}")
        s.close()
for o in (11, 12, 21, 22, 31):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((f"127.0.1.{o}", 25))
    except OSError:
        busy.append(f"127.0.1.{o}:25")
    s.close()
if busy:
    sys.exit("busy (another benchmark running?): " + " ".join(sorted(set(busy))))
EOF

{ date; uptime; nproc; } > "$OUT/host.txt"
nsrv=$(echo "$SERVERS" | tr ',' '\n' | wc -l)
bound=$(( RUNS * nsrv * 2 * (DURATION + 15) + 180 ))
echo "== UDP run (bound ${bound}s), load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
timeout --kill-after=30 "$bound" $PY "$SHARED/throughput.py" "$OUT/udp" --servers "$SERVERS" \
  --pins pinned --qtypes oxford-MX,mail1-A --runs "$RUNS" --duration "$DURATION" \
  > "$OUT/udp.md" 2> "$OUT/udp.log" &
child=$!; wait "$child"; child=""
if [ "${SKIP_TCP:-0}" != 1 ]; then
  ntcp=$(echo "$TCP_SERVERS" | tr ',' '\n' | wc -l)
  bound=$(( RUNS * ntcp * (DURATION + 15) + 180 ))
  echo "== TCP run (bound ${bound}s), load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  DNSPERF_ARGS="-m tcp -c 8 -T 1 -q 100" timeout --kill-after=30 "$bound" \
    $PY "$SHARED/throughput.py" "$OUT/tcp" --servers "$TCP_SERVERS" --pins pinned \
    --qtypes oxford-MX --runs "$RUNS" --duration "$DURATION" > "$OUT/tcp.md" 2> "$OUT/tcp.log" &
  child=$!; wait "$child"; child=""
fi
uptime >> "$OUT/host.txt"

$PY - "$OUT" <<'EOF'
import json, os, statistics, sys
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name, "throughput.json")
    return json.load(open(p)) if os.path.exists(p) else None
udp, tcp = load("udp"), load("tcp")
if not udp:
    sys.exit("no UDP results (see udp.log)")
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def g(data, s, q, key):
    if not data:
        return None
    return med([r[key] for r in data["results"] if r["server"] == s and r["qtype"] == q])
def f0(x): return "n/a" if x is None else f"{x:,.0f}"
def f3(x): return "n/a" if x is None else f"{x:.3f}"
def ratio(a, b): return "n/a" if not a or not b else f"{a / b:.2f}"
servers = []
for r in udp["results"]:
    if r["server"] not in servers:
        servers.append(r["server"])
ref_mx = g(udp, "gdnsd", "oxford-MX", "q_per_server_cpu_s")
ref_a = g(udp, "gdnsd", "mail1-A", "q_per_server_cpu_s")
m = udp["meta"]
loads = [float(r["loadavg_before"][0]) for r in udp["results"]]
other = [r["box"]["other"] + r["box"]["steal"] for r in udp["results"] if "box" in r]
print(f"### smarthostd vs peers: {m['runs']} runs x {m['duration']} s, dnsperf "
      f"`{' '.join(m['dnsperf_args'])}`, pinned (dnsperf CPU 0, server CPU 1), medians; "
      f"loadavg before runs {min(loads):.2f}-{max(loads):.2f}; other work+steal during runs "
      f"median {statistics.median(other):.2f} cores (max {max(other):.2f}); "
      f"{m['started']} .. {m.get('finished')}\n")
hdr = ("| server | oxford MX q/s | MX avg lat ms | MX per server CPU-s | host A q/s | A avg lat ms "
       "| host A per CPU-s | RSS idle MiB | ratio to gdnsd (MX per CPU-s) | ratio to gdnsd (A per CPU-s) "
       "| TCP MX q/s | TCP MX avg lat ms | TCP MX per CPU-s | MX answer |")
print(hdr)
print("|" + "---|" * (hdr.count("|") - 1))
for s in servers:
    mxe, ae = g(udp, s, "oxford-MX", "q_per_server_cpu_s"), g(udp, s, "mail1-A", "q_per_server_cpu_s")
    ans = m.get("answers", {}).get(s, {}).get("oxford-MX")
    ans_txt = f"{ans[0]}, {len(ans[1])} MX" if ans else "n/a"
    in_tcp = tcp and any(r["server"] == s for r in tcp["results"])
    print(f"| {s} | {f0(g(udp, s, 'oxford-MX', 'qps'))} | {f3(g(udp, s, 'oxford-MX', 'avg_lat_ms'))} | "
          f"{f0(mxe)} | {f0(g(udp, s, 'mail1-A', 'qps'))} | {f3(g(udp, s, 'mail1-A', 'avg_lat_ms'))} | "
          f"{f0(ae)} | {udp['idle_rss_kb'].get(s, 0) / 1024:.1f} | {ratio(mxe, ref_mx)} | {ratio(ae, ref_a)} | "
          + (f"{f0(g(tcp, s, 'oxford-MX', 'qps'))} | {f3(g(tcp, s, 'oxford-MX', 'avg_lat_ms'))} | "
             f"{f0(g(tcp, s, 'oxford-MX', 'q_per_server_cpu_s'))}" if in_tcp else "- | - | -")
          + f" | {ans_txt} |")
print()
print("server CPU % during the UDP runs (median, MX / A): " + ", ".join(
    f"{s} {f0(g(udp, s, 'oxford-MX', 'server_cpu_pct'))}/{f0(g(udp, s, 'mail1-A', 'server_cpu_pct'))}"
    for s in servers))
lost = {s: sum((r["lost"] or 0) for r in udp["results"] if r["server"] == s) for s in servers}
print("queries lost (UDP, all runs): " + ", ".join(f"{s} {v:.0f}" for s, v in lost.items()))
if tcp:
    tl = {s: sum((r["lost"] or 0) for r in tcp["results"] if r["server"] == s)
          for s in {r["server"] for r in tcp["results"]}}
    print("queries lost (TCP): " + ", ".join(f"{s} {v:.0f}" for s, v in sorted(tl.items())))
    print(f"TCP run: dnsperf `{' '.join(tcp['meta']['dnsperf_args'])}`")
print(f"\nraw: {out}/udp/throughput.md, {out}/tcp/throughput.md, logs {out}/*.log")
EOF
echo "smarthostd binary: $SMARTHOSTD_BIN (built $(date -r "$SMARTHOSTD_BIN" '+%F %T'), sha256 $(sha256sum "$SMARTHOSTD_BIN" | cut -c1-12); git HEAD $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock | grep -q . && echo '+dirty src'))"
