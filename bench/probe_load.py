#!/usr/bin/python3
"""Probing cost: smarthostd's CPU while it probes 10,000 SMTP relays.

What it measures
  Fake SMTP relays (220 greeting, multi-line EHLO 250, QUIT 221) listen on --hosts (default
  10,000) loopback addresses PREFIX.X.Y:25 (X = i // 250, Y = i % 250 + 1; PREFIX 127.44).
  They are, by default, one single-threaded epoll process (bench/fake_smtp_epoll.c, compiled
  with cc at run time: ~3x cheaper per connection than asyncio, so the relays do not steal the
  CPU being measured); --relays python runs them as asyncio protocols in --workers helper
  processes of this script instead.  smarthostd is configured with --sites (default 2,000)
  sites of hosts/sites relays each (5 per site: with 10, `smarthostd check-config` warns that
  Postfix tries at most smtp_mx_address_limit = 5 addresses per MX group; --sites 1000 gives
  10), every site with an explicit `fallback = [next site]` so answers stay small, and its
  default probe settings (interval 2 s, timeout 1 s, max_concurrent 1024) unless
  --probe-interval / --max-concurrent are given.  Reported:
    * start-up: time from spawn to the first DNS answer (the first probe round gates
      answering) and to /readyz = 200, and how many hosts were up in the first answers;
    * after --settle s (default 10), over --measure s (default 30): smarthostd CPU
      (utime+stime from /proc/PID/stat) as % of one core, split user/system, per-second
      min/median/max; probes/s and failed probes (smarthostd_probe_results_total), CPU per
      probe, mean probe duration, the CPU projected at the nominal rate (hosts / interval);
      transitions and snapshot generations in the window (failed probes or transitions mean
      the relays or the box were overloaded and the figure is not clean); the relays' CPU and
      the whole box's busy share; RSS (also every 10 s), VmHWM, threads, fds (open fds ~ probes
      in flight).
  --floor runs bench/probe_floor.c instead of smarthostd: the same dialogue from a bare C epoll
  client (no per-step timers, metrics or allocation) at the same rate against the same relays,
  starting probes as they fall due and then with wake-ups batched every 100 and 500 ms: the
  least CPU a probe can cost on this machine, to read smarthostd's figure against.
  Target (issue): <= 25 % of one core.  The machine has 2 shared cores: read the load average.
  On loopback the receive path of every segment smarthostd sends (SYN, commands) runs in its
  own system calls and is charged to it, so system time is higher than over a real NIC.

How to run
    /usr/bin/python3 bench/probe_load.py                     # 10,000 hosts, 30 s window
    /usr/bin/python3 bench/probe_load.py --sites 1000        # 10 hosts per site
    /usr/bin/python3 bench/probe_load.py --hosts 2000 --sites 400 --measure 20
    /usr/bin/python3 bench/probe_load.py --relays python     # asyncio relays (2 workers)
    /usr/bin/python3 bench/probe_load.py --floor             # bare C client instead (~2 min)
  Options: --prefix 127.44 --port 25 --workers N --settle 10 --measure 30 --dns-port 5393
  --admin-port 8093 --probe-interval 2s --max-concurrent 1024 --bin PATH.  RLIMIT_NOFILE is
  raised to the hard limit (the relays listen on one socket per host); smarthostd inherits it.
  Bounded: relay start-up 120 s, smarthostd start-up 120 s, --measure <= 300, relays exit by
  themselves after settle + measure + 600 s; every process is started and stopped by PID
  (try/finally).
"""
import argparse
import asyncio
import os
import resource
import signal
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402


def addr(prefix, i):
    return f"{prefix}.{i // 250}.{i % 250 + 1}"


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


# ------------------------------------------------------------------ worker (fake relays)
def worker(a):
    raise_nofile()

    async def main():
        pool = C.RelayPool(thread=False)
        keys = [pool.add(addr(a.prefix, i), a.port, f"r{i}.{C.ZONE}")
                for i in range(a.worker_start, a.worker_start + a.worker_count)]
        for k in keys:
            await pool.relays[k].up()
        with open(a.ready + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(a.ready + ".tmp", a.ready)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, stop.set)
        try:
            await asyncio.wait_for(stop.wait(), a.worker_max_s)
        except asyncio.TimeoutError:
            pass
        for k in keys:
            await pool.relays[k].refuse()
    asyncio.run(main())


def interval_s(a):
    """--probe-interval in seconds ("2s", "500ms"), 2 when not given."""
    v = a.probe_interval
    if not v:
        return 2.0
    return float(v[:-2]) / 1000 if v.endswith("ms") else float(v.rstrip("s"))


# ------------------------------------------------------------------ floor
def run_floor(a, work, workers):
    """Runs bench/probe_floor.c against the relays at the same rate, its wake-ups unbatched and
    batched, and prints its CPU per probe."""
    exe = os.path.join(work, "probe_floor")
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(C.BENCH, "probe_floor.c")],
                   check=True, timeout=120)
    ival = interval_s(a)
    print(f"\n## probe floor: bare C epoll SMTP client, {a.hosts} relays every {ival:g} s "
          f"({a.hosts / ival:.0f} probes/s), {a.measure:g} s each\n")
    print("| wake-ups at least every | client CPU, % of one core (user / system) | probes/s ok / failed "
          "| CPU per probe | projected at nominal rate | fake relays CPU |")
    print("|---|---|---|---|---|---|")
    for batch_ms in (0, 100, 500):
        wk_a, t_a = sum(C.cpu_ticks(p.pid) for p in workers), time.monotonic()
        out = subprocess.run([exe, a.prefix, str(a.hosts), str(a.port), str(int(ival * 1000)),
                              str(int(a.settle)), str(int(a.measure)), str(batch_ms)],
                             capture_output=True, text=True, timeout=a.settle + a.measure + 60,
                             check=True)
        wk = 100 * (sum(C.cpu_ticks(p.pid) for p in workers) - wk_a) / C.CLK / (time.monotonic() - t_a)
        f = out.stdout.split()
        probes, failed, wall, user, sys_ = int(f[1]), int(f[3]), float(f[5]), float(f[7]), float(f[9])
        per_probe = (user + sys_) / max(1, probes + failed)
        print(f"| {'as due' if batch_ms == 0 else f'{batch_ms} ms'} | {100 * (user + sys_) / wall:.1f} "
              f"({100 * user / wall:.1f} / {100 * sys_ / wall:.1f}) | {probes / wall:.0f} / {failed / wall:.1f} "
              f"| {1e6 * per_probe:.0f} us | {100 * per_probe * a.hosts / ival:.0f} % | {wk:.0f} % |")


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=10000)
    ap.add_argument("--sites", type=int, default=2000)
    ap.add_argument("--workers", type=int, help="relay processes (default 1 for c, 2 for python)")
    ap.add_argument("--relays", choices=["c", "python"],
                    help="fake relay implementation: c = bench/fake_smtp_epoll.c compiled with cc "
                         "(default when cc exists), python = asyncio protocols in this script")
    ap.add_argument("--prefix", default="127.44")
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--measure", type=float, default=30.0)
    ap.add_argument("--probe-interval")
    ap.add_argument("--max-concurrent", type=int)
    ap.add_argument("--dns-port", type=int, default=5393)
    ap.add_argument("--admin-port", type=int, default=8093)
    ap.add_argument("--bin", default=C.DEFAULT_BIN)
    ap.add_argument("--floor", action="store_true",
                    help="instead of smarthostd, run bench/probe_floor.c (the same SMTP dialogue "
                         "in bare C epoll) against the same relays: the least a probe can cost here")
    # internal: worker mode
    ap.add_argument("--worker-start", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--worker-count", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--worker-max-s", type=float, default=900, help=argparse.SUPPRESS)
    ap.add_argument("--ready", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker_start is not None:
        return worker(a)
    if a.relays is None:
        a.relays = "c" if shutil.which("cc") else "python"
    if a.workers is None:
        a.workers = 1 if a.relays == "c" else 2
    if not (1 <= a.hosts <= 60000 and 1 <= a.sites <= a.hosts and a.hosts % a.sites == 0
            and 1 <= a.workers <= 8 and 0 < a.measure <= 300 and 0 <= a.settle <= 120):
        sys.exit("bounds: hosts <= 60000, divisible by sites; workers 1..8; measure <= 300 s")
    per = a.hosts // a.sites
    soft, hard = raise_nofile()
    need = a.hosts // a.workers + 2048
    if hard < need:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} < {need} needed per relay worker: use more --workers")
    C.require_ports_free([("127.0.0.1", a.dns_port), ("127.0.0.1", a.admin_port)])
    C.check_loopback(addr(a.prefix, a.hosts - 1))
    work = tempfile.mkdtemp(prefix="smarthostd-probeload-")
    workers, srv = [], None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        # ---- relays
        if a.relays == "c":
            exe = os.path.join(work, "fake_smtp_epoll")
            subprocess.run(["cc", "-O2", "-o", exe, os.path.join(C.BENCH, "fake_smtp_epoll.c")],
                           check=True, timeout=120)
        t0 = time.monotonic()
        chunk = -(-a.hosts // a.workers)
        readies = []
        for w in range(a.workers):
            start, count = w * chunk, min(chunk, a.hosts - w * chunk)
            ready = os.path.join(work, f"worker{w}.ready")
            readies.append(ready)
            lf = open(os.path.join(work, f"worker{w}.log"), "w")
            max_s = str(int(a.settle + a.measure + 600))
            argv = ([exe, a.prefix, str(start), str(count), str(a.port), ready, max_s]
                    if a.relays == "c" else
                    [sys.executable, os.path.abspath(__file__), "--worker-start", str(start),
                     "--worker-count", str(count), "--ready", ready, "--prefix", a.prefix,
                     "--port", str(a.port), "--worker-max-s", max_s])
            workers.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf,
                                            stderr=subprocess.STDOUT))
            lf.close()
        if not C.wait_for(lambda: all(os.path.exists(r) for r in readies) or
                          any(p.poll() is not None for p in workers), 120, 0.1) or \
                any(p.poll() is not None for p in workers):
            raise SystemExit("relay workers failed: see " + work)
        C.log(f"{a.hosts} fake relays listening ({a.workers} {a.relays} workers) after {time.monotonic() - t0:.1f}s")
        if a.floor:
            return run_floor(a, work, workers)
        # ---- config
        sites, fb = {}, {}
        for s in range(a.sites):
            name = f"s{s:04d}"
            sites[name] = [(f"r{s * per + h}", [addr(a.prefix, s * per + h)],
                            a.port if a.port != 25 else None) for h in range(per)]
            if a.sites > 1:
                fb[name] = [f"s{(s + 1) % a.sites:04d}"]
        probe = {}
        if a.probe_interval:
            probe["interval"] = a.probe_interval
        if a.max_concurrent:
            probe["max_concurrent"] = a.max_concurrent
        cfg = C.write_config(work, a.dns_port, a.admin_port, sites, probe=probe or None, fallback=fb)
        # ---- start-up
        load_start = C.loadavg()
        srv = C.Smarthostd(a.bin, cfg, os.path.join(work, "smarthostd.log"))
        first = C.wait_for(lambda: (lambda r: r if r[0] == "NOERROR" else None)(
            C.query(a.dns_port, f"s0000.{C.ZONE}", "MX", 0.05)), 120, 0.005)
        t_dns = time.monotonic() - srv.t_spawn
        if not first:
            raise SystemExit(f"no DNS answer within 120 s; log tail:\n{srv.log_text()[-2000:]}")
        import urllib.request

        def readyz():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{a.admin_port}/readyz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False
        C.wait_for(readyz, 30, 0.01)
        t_ready = time.monotonic() - srv.t_spawn
        ms0 = C.metrics(f"127.0.0.1:{a.admin_port}", timeout=10)
        up_first = C.metric_sum(ms0, "smarthostd_host_up")
        rss_start = C.proc_status(srv.pid, "VmRSS")
        C.log(f"smarthostd answering after {t_dns:.2f}s, ready after {t_ready:.2f}s, "
              f"{up_first:.0f}/{a.hosts} hosts up; first answer {len(first[1])} MX")
        time.sleep(a.settle)
        # ---- window
        ms_a = C.metrics(f"127.0.0.1:{a.admin_port}", timeout=10)
        busy_a = C.box_busy()
        wk_a = sum(C.cpu_ticks(p.pid) for p in workers)
        c_a = C.cpu_ticks(srv.pid)
        us_a = C.cpu_user_sys(srv.pid)
        rss_a = C.proc_status(srv.pid, "VmRSS")
        load_a = C.loadavg()
        t_a = time.monotonic()
        per_sec, prev, k, rss_10s = [], c_a, 0, []
        while time.monotonic() - t_a < a.measure:
            k += 1
            d = t_a + min(k, a.measure) - time.monotonic()
            if d > 0:
                time.sleep(d)
            c = C.cpu_ticks(srv.pid)
            per_sec.append(100.0 * (c - prev) / C.CLK)
            prev = c
            if k % 10 == 0:
                rss_10s.append(round(C.proc_status(srv.pid, "VmRSS") / 1024, 1))
        c_b = C.cpu_ticks(srv.pid)
        us_b = C.cpu_user_sys(srv.pid)
        t_b = time.monotonic()
        wk_b = sum(C.cpu_ticks(p.pid) for p in workers)
        busy_b = C.box_busy()
        load_b = C.loadavg()
        ms_b = C.metrics(f"127.0.0.1:{a.admin_port}", timeout=10)
        wall = t_b - t_a
        cpu_pct = 100.0 * (c_b - c_a) / C.CLK / wall
        wk_pct = 100.0 * (wk_b - wk_a) / C.CLK / wall
        box_pct = 100.0 * (busy_b[0] - busy_a[0]) / max(1, busy_b[1] - busy_a[1]) * os.cpu_count()

        def probes(ms, res):
            return sum(v for (n, lab), v in ms.items()
                       if n == "smarthostd_probe_results_total" and f'result="{res}"' in lab)
        n_up = probes(ms_b, "up") - probes(ms_a, "up")
        n_down = probes(ms_b, "down") - probes(ms_a, "down")
        trans = C.metric_sum(ms_b, "smarthostd_transitions_total") - C.metric_sum(ms_a, "smarthostd_transitions_total")
        gens = C.metric_sum(ms_b, "smarthostd_snapshot_generation") - C.metric_sum(ms_a, "smarthostd_snapshot_generation")
        hosts_up = C.metric_sum(ms_b, "smarthostd_host_up")
        dur_n = C.metric_sum(ms_b, "smarthostd_probe_duration_seconds_count") - \
            C.metric_sum(ms_a, "smarthostd_probe_duration_seconds_count")
        dur_s = C.metric_sum(ms_b, "smarthostd_probe_duration_seconds_sum") - \
            C.metric_sum(ms_a, "smarthostd_probe_duration_seconds_sum")
        rss = C.proc_status(srv.pid, "VmRSS")
        hwm = C.proc_status(srv.pid, "VmHWM")
        threads = C.proc_status(srv.pid, "Threads")
        fds = C.fd_count(srv.pid)
        alive = srv.alive()
    finally:
        if srv:
            srv.stop()
        for p in workers:
            if p.poll() is None:
                p.terminate()
        for p in workers:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if a.floor:
            shutil.rmtree(work, ignore_errors=True)
    log = srv.log_text() if srv else ""
    warns = sum(1 for l in log.splitlines() if " WARN" in l or "ERROR" in l)
    panics = log.count("panicked")
    shutil.rmtree(work, ignore_errors=True)
    ps = sorted(per_sec)
    print(f"\n## smarthostd probe load: {a.hosts} hosts in {a.sites} sites ({per} per site, fallback = [next site]), "
          f"{'probe ' + ', '.join(f'{k}={v}' for k, v in probe.items()) if probe else 'default probe settings (interval 2s, timeout 1s, max_concurrent 1024)'}\n")
    print(f"binary: {C.bin_info(a.bin)}")
    print(f"loadavg at start {load_start}, window {load_a} -> {load_b}; {os.cpu_count()} CPUs shared\n")
    print("| figure | value |")
    print("|---|---|")
    print(f"| start-up: first DNS answer after | {t_dns:.2f} s |")
    print(f"| start-up: /readyz 200 after | {t_ready:.2f} s |")
    print(f"| hosts up at first answer | {up_first:.0f}/{a.hosts} |")
    print(f"| **smarthostd CPU over {wall:.0f} s** | **{cpu_pct:.1f} % of one core** |")
    print(f"| of which user / system | {100 * (us_b[0] - us_a[0]) / C.CLK / wall:.1f} / "
          f"{100 * (us_b[1] - us_a[1]) / C.CLK / wall:.1f} % |")
    print(f"| per-second CPU min / median / max | {ps[0]:.0f} / {C.median(ps):.0f} / {ps[-1]:.0f} % |")
    print(f"| probes per second (ok / failed) | {n_up / wall:.0f} / {n_down / wall:.1f} |")
    per_probe = (c_b - c_a) / C.CLK / max(1, n_up + n_down)
    ival = interval_s(a)
    print(f"| CPU per probe | {1e6 * per_probe:.0f} us |")
    print(f"| mean probe duration (smarthostd_probe_duration_seconds) | {1000 * dur_s / max(1, dur_n):.1f} ms |")
    print(f"| CPU projected at the nominal rate ({a.hosts} / {ival:g} s = {a.hosts / ival:.0f} probes/s) "
          f"| {100 * per_probe * a.hosts / ival:.0f} % of one core |")
    print(f"| transitions / snapshot generations in window | {trans:.0f} / {gens:.0f} |")
    print(f"| hosts up at end | {hosts_up:.0f}/{a.hosts} |")
    print(f"| fake relays CPU ({a.workers} {a.relays} processes) | {wk_pct:.0f} % of one core |")
    print(f"| whole box busy | {box_pct:.0f} % of one core (of {100 * os.cpu_count()}) |")
    print(f"| RSS at first answer / window start / window end, VmHWM | {rss_start / 1024:.1f} / "
          f"{rss_a / 1024:.1f} / {rss / 1024:.1f} MiB, {hwm / 1024:.1f} MiB |")
    print(f"| RSS every 10 s of the window, MiB | {rss_10s} |")
    print(f"| threads, fds | {threads}, {fds} |")
    print(f"| log: WARN/ERROR lines, panics; alive | {warns}, {panics}; {alive} |")
    print(f"\ntarget <= 25 % of one core: {'PASS' if cpu_pct <= 25 else 'FAIL'} ({cpu_pct:.1f} %)"
          + ("" if n_down == 0 else f"; NOTE {n_down:.0f} failed probes in the window: relays or box overloaded?"))


if __name__ == "__main__":
    main()
