#!/usr/bin/python3
"""Helpers for bench/soak.sh (run that, not this).

    soak_helper.py config  --dir D --dns-port P --admin-port A --net N --port 25
    soak_helper.py relays  --net N --port 25 --seconds S --ready FILE --out FILE [--seed X]
    soak_helper.py check   --dns-port P --seconds S --out FILE [--every 0.02]
    soak_helper.py metrics --admin-port A --out FILE
    soak_helper.py analyze --dir D --seconds S

relays: the 5 bench relays (oxford 2, cambridge 2, london 1) on N.11/.12/.21/.22/.31, all up,
then a chaos loop: every 100-500 ms one random relay changes state (an up relay becomes
refused - listener closed, sessions dropped - or hung - accepts, never greets; a failed relay
comes back up).  Bounded by --seconds; all relays are put back up and closed at the end.
check: every --every s one UDP query (EDNS0, 1232) round-robin over the 3 site MX names and the
5 host A names; counts NOERROR-with-data, empty answers (NODATA), NXDOMAIN, SERVFAIL, other
rcodes, truncation, timeouts, MX answers whose exchanges lack an address in the additional
section.  analyze: reads everything soak.sh wrote, prints the report, exits 1 if an assertion
fails.
"""
import argparse
import asyncio
import json
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

import dns.exception  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

CHAOS_PROBE = {"interval": "200ms", "timeout": "200ms", "rise": 2, "fall": 2}


def names():
    return ([(f"{s}.{C.ZONE}", "MX") for s in ("oxford", "cambridge", "london")] +
            [(f"{h}.{s}.{C.ZONE}", "A") for s, h, _ in C.BENCH_RELAYS])


def cmd_config(a):
    print(C.write_config(a.dir, a.dns_port, a.admin_port, C.bench_sites(a.net, a.port),
                         probe=CHAOS_PROBE))
    with open(os.path.join(a.dir, "queries.txt"), "w") as f:
        for n, t in names():
            f.write(f"{n} {t}\n")


def cmd_relays(a):
    if a.seed is not None:
        random.seed(a.seed)

    async def main():
        pool = C.RelayPool(thread=False)
        keys = [pool.add(C.bench_addr(a.net, o), a.port, f"{h}.{s}.{C.ZONE}")
                for s, h, o in C.BENCH_RELAYS]
        for k in keys:
            await pool.relays[k].up()
        with open(a.ready, "w") as f:
            f.write(str(os.getpid()))
        actions = {"refused": 0, "hung": 0, "up": 0}
        all_down = 0
        t_end = time.monotonic() + a.seconds
        while time.monotonic() < t_end:
            await asyncio.sleep(random.uniform(0.1, 0.5))
            r = pool.relays[random.choice(keys)]
            if r.mode == "up":
                mode = random.choice(["refused", "hung"])
                await (r.refuse() if mode == "refused" else r.hang())
            else:
                mode = "up"
                await r.up()
            actions[mode] += 1
            all_down += all(x.mode != "up" for x in pool.relays.values())
        accepted = sum(r.accepted for r in pool.relays.values())
        for k in keys:
            await pool.relays[k].refuse()
        with open(a.out, "w") as f:
            json.dump({"actions": actions, "all_down_moments": all_down,
                       "connections_accepted": accepted}, f)
    asyncio.run(main())


def cmd_check(a):
    qs = names()
    counts = {}
    lat = []
    t0 = time.monotonic()
    t_end = t0 + a.seconds
    k = 0
    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        n, t = qs[k % len(qs)]
        q = dns.message.make_query(n, t, use_edns=0, payload=1232)
        q.flags &= ~dns.flags.RD
        ts = time.monotonic()
        try:
            r = dns.query.udp(q, "127.0.0.1", port=a.dns_port, timeout=0.5)
            lat.append(time.monotonic() - ts)
            rc = r.rcode()
            if r.flags & dns.flags.TC:
                key = "TRUNCATED"
            elif rc != dns.rcode.NOERROR:
                key = dns.rcode.to_text(rc)
            else:
                rt = dns.rdatatype.from_text(t)
                recs = [rd for rr in r.answer if rr.rdtype == rt for rd in rr]
                key = "ok" if recs else "EMPTY"
                if t == "MX" and recs:
                    have = {rr.name.to_text() for rr in r.additional
                            if rr.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)}
                    if any(rd.exchange.to_text() not in have for rd in recs):
                        counts[f"{t}:no_glue"] = counts.get(f"{t}:no_glue", 0) + 1
        except dns.exception.Timeout:
            key = "TIMEOUT"
        except OSError as e:
            key = f"ERROR {e.__class__.__name__}"
        counts[f"{t}:{key}"] = counts.get(f"{t}:{key}", 0) + 1
        k += 1
        d = t0 + k * a.every - time.monotonic()
        if d > 0:
            time.sleep(d)
    lat.sort()
    with open(a.out, "w") as f:
        json.dump({"counts": counts, "queries": k,
                   "lat_ms_p50": 1000 * lat[len(lat) // 2] if lat else None,
                   "lat_ms_p99": 1000 * lat[int(len(lat) * 0.99)] if lat else None,
                   "lat_ms_max": 1000 * lat[-1] if lat else None}, f)


def cmd_metrics(a):
    ms = C.metrics(f"127.0.0.1:{a.admin_port}", timeout=5)
    out = {"transitions": C.metric_sum(ms, "smarthostd_transitions_total"),
           "generation": C.metric_sum(ms, "smarthostd_snapshot_generation"),
           "probes": C.metric_sum(ms, "smarthostd_probe_results_total"),
           "queries": C.metric_sum(ms, "smarthostd_dns_queries_total"),
           "servfail": sum(v for (n, l), v in ms.items()
                           if n == "smarthostd_dns_queries_total" and 'rcode="SERVFAIL"' in l),
           "nxdomain": sum(v for (n, l), v in ms.items()
                           if n == "smarthostd_dns_queries_total" and 'rcode="NXDOMAIN"' in l),
           "ok": bool(ms)}
    with open(a.out, "w") as f:
        json.dump(out, f)


def avg(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def cmd_analyze(a):
    d = a.dir

    def load(name, default=None):
        try:
            with open(os.path.join(d, name)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return default
    fails = []
    # dnsperf
    try:
        perf = open(os.path.join(d, "dnsperf.out")).read()
    except OSError:
        perf = ""

    dp = C.parse_dnsperf(perf)
    qps, sent, done, lost, rcodes = dp["qps"], dp["sent"], dp["completed"], dp["lost"], dp["rcodes"]
    lat = None if dp["avg_lat_ms"] is None else dp["avg_lat_ms"] / 1000
    if qps is None:
        fails.append("dnsperf produced no result")
    for bad in ("SERVFAIL", "NXDOMAIN"):
        if rcodes.get(bad):
            fails.append(f"dnsperf saw {rcodes[bad]} {bad}")
    other_rc = {k: v for k, v in rcodes.items() if k not in ("NOERROR",)}
    # checker
    chk = load("check.json", {"counts": {}, "queries": 0})
    cc = chk["counts"]
    empty_mx = cc.get("MX:EMPTY", 0)
    nx = sum(v for k, v in cc.items() if k.endswith(":NXDOMAIN"))
    sf = sum(v for k, v in cc.items() if k.endswith(":SERVFAIL"))
    to = sum(v for k, v in cc.items() if k.endswith(":TIMEOUT"))
    empty = sum(v for k, v in cc.items() if k.endswith(":EMPTY"))
    if empty_mx:
        fails.append(f"{empty_mx} empty MX answers")
    if empty - empty_mx:
        fails.append(f"{empty - empty_mx} empty A answers")
    if nx:
        fails.append(f"{nx} NXDOMAIN for configured names (checker)")
    if sf:
        fails.append(f"{sf} SERVFAIL (checker)")
    if cc.get("MX:no_glue"):
        fails.append(f"{cc['MX:no_glue']} MX answers without the exchanges' addresses")
    # samples: "t rss_kb fds" per line
    samples = []
    try:
        for line in open(os.path.join(d, "samples.txt")):
            p = line.split()
            if len(p) == 3 and p[1].isdigit() and p[2].isdigit():
                samples.append((float(p[0]), int(p[1]), int(p[2])))
    except OSError:
        pass
    w = min(10, max(1, len(samples) // 3))
    first, last = samples[:w], samples[-w:]
    rss0, rss1 = avg([s[1] for s in first]), avg([s[1] for s in last])
    fd0, fd1 = avg([s[2] for s in first]), avg([s[2] for s in last])
    growth = 100 * (rss1 - rss0) / rss0 if rss0 else float("nan")
    if len(samples) < 3:
        fails.append("too few RSS/fd samples (smarthostd died?)")
    else:
        if not growth < 10:
            fails.append(f"RSS grew {growth:.1f} % (first {w} s {rss0:.0f} kB -> last {w} s {rss1:.0f} kB)")
        if fd1 > fd0 + 5:
            fails.append(f"fds grew: first {w} s avg {fd0:.1f} -> last {w} s avg {fd1:.1f}")
    # metrics, relays, log, exit
    m0, m1 = load("metrics0.json", {}), load("metrics1.json", {})
    rel = load("relays.json", {})
    log = ""
    try:
        log = open(os.path.join(d, "smarthostd.log"), errors="replace").read()
    except OSError:
        pass
    panics = len(re.findall(r"panick", log))
    if panics:
        fails.append(f"{panics} panic lines in the log")
    alive = open(os.path.join(d, "alive_at_end")).read().strip() if os.path.exists(os.path.join(d, "alive_at_end")) else "?"
    if alive != "yes":
        fails.append("smarthostd was not running at the end")
    rc = open(os.path.join(d, "exit_code")).read().strip() if os.path.exists(os.path.join(d, "exit_code")) else "?"
    errs = sum(1 for l in log.splitlines() if "ERROR" in l)

    print(f"\n## smarthostd soak: {a.seconds} s, chaos probe config {CHAOS_PROBE}")
    print(f"binary: {C.bin_info(a.bin)}")
    try:
        print("loadavg: " + open(os.path.join(d, "load.txt")).read().replace("\n", " | "))
    except OSError:
        pass
    print(f"\n| figure | value |\n|---|---|")
    print(f"| dnsperf queries/s | {qps:,.0f} |" if qps else "| dnsperf queries/s | n/a |")
    print(f"| dnsperf sent / completed / lost | {sent:.0f} / {done:.0f} / {lost:.0f} |" if sent is not None else "| dnsperf | n/a |")
    print(f"| dnsperf avg latency | {1000 * lat:.3f} ms |" if lat else "| dnsperf avg latency | n/a |")
    print(f"| dnsperf response codes | {rcodes} |")
    print(f"| checker queries (every 20 ms) | {chk['queries']} |")
    print(f"| checker outcomes | {dict(sorted(cc.items()))} |")
    print(f"| checker latency p50 / p99 / max | {chk.get('lat_ms_p50') or 0:.2f} / {chk.get('lat_ms_p99') or 0:.2f} / {chk.get('lat_ms_max') or 0:.2f} ms |")
    print(f"| empty MX / NXDOMAIN / SERVFAIL / timeouts (checker) | {empty_mx} / {nx} / {sf} / {to} |")
    print(f"| chaos actions (relays) | {rel.get('actions')} , moments with all 5 relays down: {rel.get('all_down_moments')} |")
    if m0 and m1:
        print(f"| state transitions (smarthostd_transitions_total) | {m1['transitions'] - m0['transitions']:.0f} |")
        print(f"| snapshot generations | {m1['generation'] - m0['generation']:.0f} (now {m1['generation']:.0f}) |")
        print(f"| probes | {m1['probes'] - m0['probes']:.0f} |")
        print(f"| server-side SERVFAIL / NXDOMAIN (metrics) | {m1['servfail'] - m0['servfail']:.0f} / {m1['nxdomain'] - m0['nxdomain']:.0f} |")
    if samples:
        print(f"| RSS first {w} s avg -> last {w} s avg (max) | {rss0 / 1024:.2f} -> {rss1 / 1024:.2f} MiB "
              f"({growth:+.1f} %, max {max(s[1] for s in samples) / 1024:.2f}) |")
        print(f"| fds first {w} s avg -> last {w} s avg (min-max) | {fd0:.1f} -> {fd1:.1f} "
              f"({min(s[2] for s in samples)}-{max(s[2] for s in samples)}) |")
    print(f"| log: panics / ERROR lines / lines | {panics} / {errs} / {len(log.splitlines())} |")
    print(f"| alive at end, exit code after SIGTERM | {alive}, {rc} |")
    if other_rc:
        print(f"\nnon-NOERROR rcodes from dnsperf: {other_rc}")
    if fails:
        print("\nFAILED: " + "; ".join(fails))
        sys.exit(1)
    print("\nPASS: no SERVFAIL, no empty MX, no NXDOMAIN for configured names, RSS growth < 10 %, "
          "fds stable, no panic")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("config")
    p.add_argument("--dir", required=True)
    p.add_argument("--dns-port", type=int, required=True)
    p.add_argument("--admin-port", type=int, required=True)
    p.add_argument("--net", required=True)
    p.add_argument("--port", type=int, default=25)
    p = sub.add_parser("relays")
    p.add_argument("--net", required=True)
    p.add_argument("--port", type=int, default=25)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--ready", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int)
    p = sub.add_parser("check")
    p.add_argument("--dns-port", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--every", type=float, default=0.02)
    p = sub.add_parser("metrics")
    p.add_argument("--admin-port", type=int, required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("analyze")
    p.add_argument("--dir", required=True)
    p.add_argument("--seconds", type=int, required=True)
    p.add_argument("--bin", default=C.DEFAULT_BIN)
    a = ap.parse_args()
    if getattr(a, "seconds", 0) and not 0 < a.seconds <= 3600:
        sys.exit("bounded: --seconds <= 3600")
    {"config": cmd_config, "relays": cmd_relays, "check": cmd_check, "metrics": cmd_metrics,
     "analyze": cmd_analyze}[a.cmd](a)


if __name__ == "__main__":
    main()
