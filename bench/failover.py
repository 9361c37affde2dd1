#!/usr/bin/python3
"""Failover benchmark: how long a dead site stays in its MX answer, and how long a returning
site takes to come back.

What it measures
  Fake SMTP relays (asyncio: `220` banner, multi-line EHLO `250`, QUIT `221`) for oxford (2
  hosts), cambridge (2) and london (1) listen on loopback addresses (127.0.41.x:25 by default).
  smarthostd serves them on a loopback port with its DEFAULT probe settings (no [probe] table:
  interval 2 s, timeout 1 s, rise 2, fall 2, fast confirm) unless --probe-* flags are given.
  Each trial (at least 20 by default):
    1. wait until `oxford.smarthost.internal MX` names both oxford relays at the lowest
       preference, then a random 0..interval s so the failure lands at a random probe phase;
    2. t0: both oxford relays fail at once:
         --mode refused (default): listeners closed and sessions dropped (connection refused);
         --mode hung: listeners keep accepting TCP but never greet (sessions dropped);
    3. poll oxford MX every 50 ms (dnspython, UDP) until no oxford host is named
       -> detection time; keep polling 1 s more and count answers naming oxford again (flaps);
    4. wait a random 0..interval s, t1: the relays greet again;
    5. poll until both oxford relays are back at the lowest preference -> recovery time;
       keep polling 1 s more and count answers where they are missing again (flaps).
  Any answer that is not NOERROR with MX records (NODATA, NXDOMAIN, SERVFAIL, timeout) is
  counted as bad.  Prints median, p90 and max of detection and recovery (site level, and per
  host), and compares with the targets from the issue (defaults, refused mode): detection
  median <= 1.5 s, max <= 3 s; recovery median <= 2 s.

  Reading the numbers: a refused relay leaves the answer right after its next probe (fast
  confirm makes the second failure immediate), i.e. after the residual of its jittered 1.8-2.2 s
  interval: per host median ~1.0 s, max ~2.2 s.  The site is gone when BOTH relays are, the
  later of two independent residuals: expected median ~1.44 s, p90 ~1.94 s, max ~2.2 s (+ up to
  50 ms of polling).  A 20-trial median therefore scatters around the 1.5 s target (about one
  run in three exceeds it by chance); use --trials 60 or more for a tight median.  Hung relays
  add two probe timeouts (2 s): expected site median ~3.4 s, max ~4.2 s.

How to run (from anywhere; build first with `cd /work/main && cargo build --release`)
    /usr/bin/python3 bench/failover.py                      # 20 trials, defaults, refused
    /usr/bin/python3 bench/failover.py --mode hung
    /usr/bin/python3 bench/failover.py --probe-interval 500ms --probe-timeout 500ms --trials 30
  Options: --trials N (>= 1, <= 500), --smtp-net 127.0.41 (relays on NET.11/.12/.21/.22/.31),
  --smtp-port 25, --dns-port 5391, --admin-port 8091, --bin PATH, --json FILE, --rise/--fall.
  Bounded: each detection / recovery wait gives up after --bound s (default 30); the whole run
  after --max-minutes (default 30).  smarthostd and the relays are stopped on exit.
  Runs as root for port 25; otherwise pass --smtp-port 2525.
  Uses Debian's /usr/bin/python3 (python3-dnspython).
"""
import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402  (bench/common.py, this folder)

POLL = 0.050
OX = f"oxford.{C.ZONE}"
OX_NAMES = {f"{h}.oxford.{C.ZONE}." for site, h, _ in C.BENCH_RELAYS if site == "oxford"}


def parse_dur(s):
    s = s.strip()
    for suf, k in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if s.endswith(suf):
            return float(s[: -len(suf)]) * k
    return float(s)


def names_oxford(res):
    return res[0] == "NOERROR" and any(n in OX_NAMES for _, n in res[1])


def oxford_preferred(res):
    if res[0] != "NOERROR" or not res[1]:
        return False
    best = min(p for p, _ in res[1])
    return {n for p, n in res[1] if p == best} == OX_NAMES


def poll(port, done, bound, t0, watch_after, undone, per_host):
    """Poll oxford MX every 50 ms from t0 until done(res), then `watch_after` s more counting
    answers for which undone(res) (a flap back).  per_host(name, res) -> bool marks the first
    time each oxford host alone reached the state.  Returns (time or None, bad list, flaps,
    queries, {host: time})."""
    first, bad, flaps, n, k = None, [], 0, 0, 0
    host_t = {h: None for h in sorted(OX_NAMES)}
    t_stop = None
    while True:
        now = time.monotonic()
        if now - t0 > bound or (t_stop is not None and now >= t_stop):
            break
        res = C.query(port, OX, "MX", timeout=0.5)
        n += 1
        tt = time.monotonic() - t0
        if res[0] != "NOERROR":
            bad.append((round(tt, 3), res[0]))
        for h in host_t:
            if host_t[h] is None and per_host(h, res):
                host_t[h] = round(tt, 3)
        if first is None:
            if done(res):
                first = tt
                t_stop = time.monotonic() + watch_after
        elif undone(res):
            flaps += 1
        k += 1
        d = t0 + k * POLL - time.monotonic()
        if d > 0:
            time.sleep(d)
    return first, bad, flaps, n, host_t


def host_gone(h, res):
    return res[0] == "NOERROR" and h not in {n for _, n in res[1]}


def host_back(h, res):
    if res[0] != "NOERROR" or not res[1]:
        return False
    best = min(p for p, _ in res[1])
    return (best, h) in res[1]


def stats_row(label, xs, n_trials):
    if not xs:
        return f"| {label} | - | - | - | - | - | 0/{n_trials} |"
    return (f"| {label} | {C.median(xs):.2f} | {C.pct(xs, 90):.2f} | {max(xs):.2f} | "
            f"{min(xs):.2f} | {sum(xs) / len(xs):.2f} | {len(xs)}/{n_trials} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--mode", choices=["refused", "hung"], default="refused")
    ap.add_argument("--probe-interval", help='e.g. "500ms" (default: no [probe] table)')
    ap.add_argument("--probe-timeout", help='e.g. "500ms"')
    ap.add_argument("--rise", type=int)
    ap.add_argument("--fall", type=int)
    ap.add_argument("--smtp-net", default="127.0.41")
    ap.add_argument("--smtp-port", type=int, default=25)
    ap.add_argument("--dns-port", type=int, default=5391)
    ap.add_argument("--admin-port", type=int, default=8091)
    ap.add_argument("--bin", default=C.DEFAULT_BIN)
    ap.add_argument("--bound", type=float, default=30.0, help="give up a wait after this many s")
    ap.add_argument("--max-minutes", type=float, default=30.0)
    ap.add_argument("--json", help="also write per-trial results here")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--keep", action="store_true", help="keep the work dir (config, log)")
    a = ap.parse_args()
    if not 1 <= a.trials <= 500:
        sys.exit("--trials must be 1..500")
    if a.seed is not None:
        random.seed(a.seed)

    probe = {}
    if a.probe_interval:
        probe["interval"] = a.probe_interval
    if a.probe_timeout:
        probe["timeout"] = a.probe_timeout
    if a.rise is not None:
        probe["rise"] = a.rise
    if a.fall is not None:
        probe["fall"] = a.fall
    interval = parse_dur(a.probe_interval or "2s")
    timeout = parse_dur(a.probe_timeout or "1s")
    settings = ", ".join(f"{k}={v}" for k, v in probe.items()) or \
        "smarthostd defaults (no [probe] table: interval 2s, timeout 1s, rise 2, fall 2)"

    addr = {(site, h): C.bench_addr(a.smtp_net, o) for site, h, o in C.BENCH_RELAYS}
    C.require_ports_free([("127.0.0.1", a.dns_port), ("127.0.0.1", a.admin_port)] +
                         [(ip, a.smtp_port) for ip in addr.values()])
    work = tempfile.mkdtemp(prefix="smarthostd-failover-")
    pool = C.RelayPool()
    srv = None
    deadline = time.monotonic() + a.max_minutes * 60
    rows = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        keys = {k: pool.add(ip, a.smtp_port, f"{k[1]}.{k[0]}.{C.ZONE}") for k, ip in addr.items()}
        pool.set(list(keys.values()), "up")
        ox_keys = [k for (site, _), k in keys.items() if site == "oxford"]
        cfg = C.write_config(work, a.dns_port, a.admin_port, C.bench_sites(a.smtp_net, a.smtp_port),
                             probe=probe or None)
        load0 = C.loadavg()
        srv = C.Smarthostd(a.bin, cfg, os.path.join(work, "smarthostd.log"))
        ok = C.wait_for(lambda: oxford_preferred(C.query(a.dns_port, OX, "MX", 0.02)), 30, 0.005)
        if not ok:
            raise SystemExit(f"smarthostd never preferred oxford; log:\n{srv.log_text()[-3000:]}")
        C.log(f"smarthostd pid {srv.pid} serving after {time.monotonic() - srv.t_spawn:.2f}s; "
              f"{a.trials} trials, mode {a.mode}, {settings}")
        for t in range(a.trials):
            if time.monotonic() > deadline:
                C.log("max-minutes reached, stopping early")
                break
            if not srv.alive():
                raise SystemExit(f"smarthostd exited; log:\n{srv.log_text()[-3000:]}")
            if not C.wait_for(lambda: oxford_preferred(C.query(a.dns_port, OX, "MX", 0.5)), a.bound):
                C.log(f"trial {t + 1}: oxford not preferred within {a.bound}s, skipping")
                continue
            time.sleep(random.uniform(0, interval))
            # ---- fail oxford
            t0 = time.monotonic()
            pool.set(ox_keys, a.mode)
            det, bad_d, flap_d, n_d, hd = poll(a.dns_port, lambda r: r[0] == "NOERROR" and not names_oxford(r),
                                               a.bound, t0, 1.0, names_oxford, host_gone)
            # A down address is probed every interval + the probe's own duration (the timeout
            # when the relay hangs): restore at a random phase of that cycle.
            time.sleep(random.uniform(0, interval + (timeout if a.mode == "hung" else 0)))
            # ---- oxford returns
            t1 = time.monotonic()
            pool.set(ox_keys, "up")
            rec, bad_r, flap_r, n_r, hr = poll(a.dns_port, oxford_preferred, a.bound, t1, 1.0,
                                               lambda r: not oxford_preferred(r), host_back)
            row = {"trial": t + 1, "detect_s": det and round(det, 3), "recover_s": rec and round(rec, 3),
                   "bad": bad_d + bad_r, "flaps_after_detect": flap_d, "flaps_after_recover": flap_r,
                   "detect_per_host_s": hd, "recover_per_host_s": hr,
                   "queries": n_d + n_r, "loadavg": C.loadavg()}
            rows.append(row)
            C.log(f"trial {t + 1:3d}: detect {row['detect_s']} s, recover {row['recover_s']} s, "
                  f"bad {len(row['bad'])}, flaps {flap_d}+{flap_r}, load {row['loadavg']}")
        ms = C.metrics(f"127.0.0.1:{a.admin_port}")
        transitions = C.metric_sum(ms, "smarthostd_transitions_total")
        generation = C.metric_sum(ms, "smarthostd_snapshot_generation")
        rss = C.proc_status(srv.pid, "VmRSS")
        load1 = C.loadavg()
    finally:
        if srv is not None:
            srv.stop()
        pool.close()
    panics = srv.log_text().count("panicked") if srv else 0

    det = [r["detect_s"] for r in rows if r["detect_s"] is not None]
    rec = [r["recover_s"] for r in rows if r["recover_s"] is not None]
    n = len(rows)
    print(f"\n## smarthostd failover: mode {a.mode}, {settings}")
    print(f"binary: {C.bin_info(a.bin)}")
    print(f"{n} trials, 50 ms MX polling; loadavg before {load0}, after {load1}; "
          f"2 CPUs shared; smarthostd RSS {rss} kB, transitions {transitions:.0f}, "
          f"generation {generation:.0f}, panics in log {panics}\n")
    print("| seconds | median | p90 | max | min | mean | within bound |")
    print("|---|---|---|---|---|---|---|")
    print(stats_row("detection (oxford gone from MX)", det, n))
    print(stats_row("recovery (both oxford back at pref 10)", rec, n))
    hd = [v for r in rows for v in r["detect_per_host_s"].values() if v is not None]
    hr = [v for r in rows for v in r["recover_per_host_s"].values() if v is not None]
    print(stats_row("per host: one relay gone from MX", hd, 2 * n))
    print(stats_row("per host: one relay back at pref 10", hr, 2 * n))
    nbad = sum(len(r["bad"]) for r in rows)
    kinds = sorted({b[1] for r in rows for b in r["bad"]})
    print(f"\nbad answers (not NOERROR with MX): {nbad} {' '.join(kinds)}; "
          f"flaps back after detection: {sum(r['flaps_after_detect'] for r in rows)}, "
          f"after recovery: {sum(r['flaps_after_recover'] for r in rows)}; "
          f"queries {sum(r['queries'] for r in rows)}")
    if not probe and a.mode == "refused":
        checks = [("detection median <= 1.5 s", bool(det) and C.median(det) <= 1.5),
                  ("detection max <= 3 s", bool(det) and len(det) == n and max(det) <= 3.0),
                  ("recovery median <= 2 s", bool(rec) and C.median(rec) <= 2.0)]
        print("\ntargets (issue, defaults with flap protection): " +
              "; ".join(f"{c}: {'PASS' if ok else 'FAIL'}" for c, ok in checks))
    print("peers on the same workload (issue): gdnsd defaults 95 s / 197 s (fastest settings "
          "2.3 s / 1.4 s, no flap protection); PowerDNS LUA ifportup defaults 3.0 s / 4.0 s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"mode": a.mode, "probe": probe, "rows": rows}, f, indent=1)
    if a.keep:
        print(f"work dir kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
