#!/usr/bin/python3
"""Memory benchmark: smarthostd's resident set size (VmRSS from /proc/PID/status).

What it measures
  1. "bench": the bench workload (oxford 2 hosts, cambridge 2, london 1 = 5 hosts), with fake
     SMTP relays up on 127.0.42.x:25 and smarthostd's default probe settings.
  2. "1000-refused": 1,000 hosts in 100 sites (10 per site), each site with
     `fallback = [next site, the one after]`, addresses 127.200.S.H (S = site 0..99, H = 1..10)
     where nothing listens: every probe is refused, every site is in failsafe.
  3. "1000-up" (unless --no-up): the same config with a fake SMTP relay on each of the 1,000
     addresses (one asyncio loop in this process), so the normal answers are built.
  For each: spawn smarthostd, record the time until it answers DNS (the first probe round
  gates answering), wait --settle s (default 10: several probe rounds), read VmRSS; then send
  one query for every site MX and host A (so every prepared answer is touched) and a burst of
  --burst queries, wait --settle/2 s and read VmRSS, VmHWM and threads again.
  Targets (issue): idle <= 10 MiB on the bench workload, <= 32 MiB with 1,000 hosts.

How to run
    /usr/bin/python3 bench/memory.py [--settle 10] [--no-up] [--dns-port 5392 --admin-port 8092]
  Needs target/release/smarthostd (cd /work/main && cargo build --release) or --bin.
  Bounded: each scenario waits at most 60 s for smarthostd to answer; everything is stopped
  on exit (smarthostd by PID, relays closed in-process).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

MIB = 1024.0


def big_sites(prefix, nsites=100, per=10):
    sites, fb = {}, {}
    for s in range(nsites):
        name = f"site{s:03d}"
        sites[name] = [(f"mx{h}", [f"{prefix}.{s}.{h}"], None) for h in range(1, per + 1)]
        fb[name] = [f"site{(s + 1) % nsites:03d}", f"site{(s + 2) % nsites:03d}"]
    return sites, fb


def run(label, sites, fallback, a, relays_up):
    work = tempfile.mkdtemp(prefix="smarthostd-mem-")
    pool = C.RelayPool() if relays_up else None
    srv = None
    try:
        if pool:
            keys = [pool.add(addrs[0], 25, f"{h}.{s}.{C.ZONE}")
                    for s, hs in sites.items() for h, addrs, _ in hs]
            pool.set(keys, "up")
        cfg = C.write_config(work, a.dns_port, a.admin_port, sites, fallback=fallback)
        first_site = next(iter(sites))
        load0 = C.loadavg()
        srv = C.Smarthostd(a.bin, cfg, os.path.join(work, "smarthostd.log"))
        ok = C.wait_for(lambda: C.query(a.dns_port, f"{first_site}.{C.ZONE}", "MX", 0.02)[0] == "NOERROR",
                        60, every=0.005)
        t_serve = time.monotonic() - srv.t_spawn
        if not ok:
            raise SystemExit(f"{label}: no answer within 60 s; log:\n{srv.log_text()[-2000:]}")
        time.sleep(a.settle)
        rss_idle = C.proc_status(srv.pid, "VmRSS")
        # touch every prepared answer, then a burst
        names = [(f"{s}.{C.ZONE}", "MX") for s in sites] + \
                [(f"{h}.{s}.{C.ZONE}", "A") for s, hs in sites.items() for h, _, _ in hs]
        bad = 0
        mx_sizes = []
        for n, t in names:
            st, vals, _ = C.query(a.dns_port, n, t, 1.0)
            bad += st != "NOERROR"
            if t == "MX":
                mx_sizes.append(len(vals))
        for i in range(a.burst):
            n, t = names[i % len(names)]
            C.query(a.dns_port, n, t, 1.0)
        time.sleep(a.settle / 2)
        rss_after = C.proc_status(srv.pid, "VmRSS")
        hwm = C.proc_status(srv.pid, "VmHWM")
        threads = C.proc_status(srv.pid, "Threads")
        fds = C.fd_count(srv.pid)
        ms = C.metrics(f"127.0.0.1:{a.admin_port}")
        up = C.metric_sum(ms, "smarthostd_host_up")
        modes = {}
        for (n, lab), v in ms.items():
            if n == "smarthostd_site_answer_mode":
                modes[int(v)] = modes.get(int(v), 0) + 1
        return {"label": label, "hosts": sum(len(h) for h in sites.values()), "sites": len(sites),
                "serve_s": t_serve, "rss_idle": rss_idle, "rss_after": rss_after, "hwm": hwm,
                "threads": threads, "fds": fds, "bad": bad, "queries": len(names) + a.burst,
                "mx_len": (min(mx_sizes), max(mx_sizes)), "hosts_up": up, "modes": modes,
                "load": f"{load0} -> {C.loadavg()}"}
    finally:
        if srv:
            srv.stop()
        if pool:
            pool.close()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--burst", type=int, default=5000, help="queries after touching every name")
    ap.add_argument("--no-up", action="store_true", help="skip the 1000-up scenario")
    ap.add_argument("--net", default="127.0.42", help="bench relays on NET.11 .. NET.31")
    ap.add_argument("--big-prefix", default="127.200", help="1,000 hosts on PREFIX.S.H")
    ap.add_argument("--dns-port", type=int, default=5392)
    ap.add_argument("--admin-port", type=int, default=8092)
    ap.add_argument("--bin", default=C.DEFAULT_BIN)
    a = ap.parse_args()
    if not 0 < a.settle <= 120 or not 0 <= a.burst <= 100000:
        sys.exit("bounded: 0 < --settle <= 120, --burst <= 100000")
    C.require_ports_free([("127.0.0.1", a.dns_port), ("127.0.0.1", a.admin_port)])
    res = []
    res.append(run("bench (5 hosts, relays up)", C.bench_sites(a.net), None, a, True))
    s, fb = big_sites(a.big_prefix)
    res.append(run("1000 hosts/100 sites, all refused", s, fb, a, False))
    if not a.no_up:
        res.append(run("1000 hosts/100 sites, relays up", s, fb, a, True))
    print(f"\n## smarthostd memory (VmRSS), settle {a.settle:.0f} s, default probe settings")
    print(f"binary: {C.bin_info(a.bin)}\n")
    print("| scenario | serving after s | RSS idle MiB | RSS after queries MiB | VmHWM MiB | threads | fds "
          "| MX records per site answer | hosts up | answer modes (0 local,1 remote,2 failsafe) | bad answers | loadavg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in res:
        print(f"| {r['label']} | {r['serve_s']:.2f} | {r['rss_idle'] / MIB:.1f} | {r['rss_after'] / MIB:.1f} | "
              f"{r['hwm'] / MIB:.1f} | {r['threads']} | {r['fds']} | {r['mx_len'][0]}-{r['mx_len'][1]} | "
              f"{r['hosts_up']:.0f}/{r['hosts']} | {r['modes']} | {r['bad']}/{r['queries']} | {r['load']} |")
    t1 = res[0]["rss_idle"] / MIB
    big = max(r["rss_idle"] / MIB for r in res[1:])
    print(f"\ntargets: bench idle <= 10 MiB: {'PASS' if t1 <= 10 else 'FAIL'} ({t1:.1f}); "
          f"1,000 hosts <= 32 MiB: {'PASS' if big <= 32 else 'FAIL'} ({big:.1f}, worst of the 1,000-host scenarios)")


if __name__ == "__main__":
    main()
