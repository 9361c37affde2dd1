#!/usr/bin/python3
"""Cluster benchmark: how long a drain made on one instance takes to be in every instance's
answers, and how long an instance started after a drain takes to have it.

What it measures
  Three smarthostd instances (release build) on loopback, each with its own folder, DNS port
  and admin port, naming each other in [cluster] with one shared token; fake SMTP relays of the
  bench workload (oxford 2, cambridge 2, london 1) on NET.11/.12/.21/.22/.31.
  1. Propagation (--trials, default 30): oxford/mail1 is drained on instance (k mod 3) and
     undrained on the next, alternately, through the admin API (POST with the token, as
     `smarthostd drain` sends it). From the moment the request is sent, all three instances'
     `oxford MX` answers are polled round-robin (dnspython, UDP, a query every ~1 ms) until each
     shows the change. Reported: the time until the last instance shows it (propagation), and
     the time until the API's reply (which waits for every peer to apply it).
  2. Catch-up after a start (--restarts, default 10): instance 3 is stopped, mail1 is drained
     (or undrained) on instance 1, instance 3 is started; from its spawn, its answers are polled
     every ~7 ms (each query given up after 5 ms: the DNS socket is bound at once, answered after
     the first probe round): the time until it first answers, and until its answer shows the
     change.
  Prints median, p90 and max of each.

How to run (from anywhere; build first with `cargo build --release`)
    /usr/bin/python3 bench/cluster.py
    /usr/bin/python3 bench/cluster.py --trials 100 --restarts 20
  Options: --net 127.0.47 (relays), --smtp-port 2525 (no root needed), --dns-port 5392
  (instances on 5392..5394), --admin-port 8092 (8092..8094), --bin PATH, --json FILE.
  Bounded: each wait gives up after --bound s (default 10); the whole run after --max-minutes
  (default 10). Every process is stopped by its PID on exit. Loopback only.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402  (bench/common.py, this folder)

OX = f"oxford.{C.ZONE}"
MAIL1 = f"mail1.oxford.{C.ZONE}."
TOKEN = "bench-cluster-token-0123456789abcdef"
N = 3


def has_mail1(port, timeout=0.5):
    """Whether port's oxford MX names mail1; None without an answer (a server that does not
    answer yet keeps the query until `timeout`)."""
    status, values, _ = C.query(port, OX, "MX", timeout=timeout)
    if status != "NOERROR":
        return None
    return any(name == MAIL1 for _, name in values)


def act(admin_port, path):
    req = urllib.request.Request(f"http://127.0.0.1:{admin_port}{path}", method="POST", data=b"",
                                 headers={"Authorization": f"Bearer {TOKEN}",
                                          "X-Smarthostd-Request": "1"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def ready(admin_port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def stats(xs):
    xs = sorted(xs)
    return {"n": len(xs), "median_ms": round(1000 * C.median(xs), 1),
            "p90_ms": round(1000 * C.pct(xs, 90), 1), "max_ms": round(1000 * xs[-1], 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--net", default="127.0.47")
    ap.add_argument("--smtp-port", type=int, default=2525)
    ap.add_argument("--dns-port", type=int, default=5392)
    ap.add_argument("--admin-port", type=int, default=8092)
    ap.add_argument("--bin", default=C.DEFAULT_BIN)
    ap.add_argument("--bound", type=float, default=10.0)
    ap.add_argument("--max-minutes", type=float, default=10.0)
    ap.add_argument("--json")
    a = ap.parse_args()
    if not (1 <= a.trials <= 1000 and 1 <= a.restarts <= 100):
        raise SystemExit("--trials 1..1000, --restarts 1..100")
    deadline = time.monotonic() + 60 * a.max_minutes
    dns = [a.dns_port + i for i in range(N)]
    admin = [a.admin_port + i for i in range(N)]
    C.require_ports_free([("127.0.0.1", p) for p in dns + admin] +
                         [(C.bench_addr(a.net, o), a.smtp_port) for _, _, o in C.BENCH_RELAYS])
    work = tempfile.mkdtemp(prefix="smarthostd-cluster-bench-")
    pool = C.RelayPool()
    procs = [None] * N
    configs = []
    try:
        keys = [pool.add(C.bench_addr(a.net, o), a.smtp_port, f"{h}.{s}") for s, h, o in C.BENCH_RELAYS]
        pool.set(keys, "up")
        peers = ", ".join(f'"127.0.0.1:{p}"' for p in admin)
        for i in range(N):
            path = C.write_config(os.path.join(work, f"i{i}"), dns[i], admin[i],
                                  C.bench_sites(a.net, a.smtp_port),
                                  extra_server=f'admin_token = "{TOKEN}"')
            with open(path, "a") as f:
                f.write(f"\n[cluster]\npeers = [{peers}]\n")
            configs.append(path)

        def start(i):
            procs[i] = C.Smarthostd(a.bin, configs[i], os.path.join(work, f"i{i}.log"))

        for i in range(N):
            start(i)
        for i in range(N):
            if not C.wait_for(lambda i=i: ready(admin[i]), 30):
                raise SystemExit(f"instance {i} not ready:\n{procs[i].log_text()[-2000:]}")
        C.log(f"3 instances ready; {C.bin_info(a.bin)}")

        # 1. propagation
        spread, reply = [], []
        drained = False
        for k in range(a.trials):
            if time.monotonic() > deadline:
                break
            on = k % N if not drained else (k + 1) % N
            want = not drained  # after a drain, mail1 is gone
            path = "/hosts/oxford/mail1/" + ("drain" if want else "undrain")
            done = {}

            def call():
                t = time.monotonic()
                res = act(admin[on], path)
                done["reply"] = time.monotonic() - t
                done["res"] = res
            t0 = time.monotonic()
            th = threading.Thread(target=call)
            th.start()
            seen = [None] * N
            while None in seen and time.monotonic() - t0 < a.bound:
                for i in range(N):
                    if seen[i] is None and has_mail1(dns[i]) is (not want):
                        seen[i] = time.monotonic() - t0
            th.join(30)
            if None in seen or "reply" not in done:
                raise SystemExit(f"trial {k}: not every instance showed the change: {seen} {done}")
            results = [d["result"] for d in done["res"].get("instances", [])]
            if results != ["applied"] * N:
                raise SystemExit(f"trial {k}: {done['res']}")
            spread.append(max(seen))
            reply.append(done["reply"])
            drained = want
        if drained:
            act(admin[0], "/hosts/oxford/mail1/undrain")

        # 2. catch-up after a start
        first, caught, at_once = [], [], 0
        for k in range(a.restarts):
            if time.monotonic() > deadline:
                break
            procs[2].stop()
            want = k % 2 == 0
            act(admin[0], "/hosts/oxford/mail1/" + ("drain" if want else "undrain"))
            start(2)
            t0 = procs[2].t_spawn
            t_first = None
            while time.monotonic() - t0 < a.bound:
                state = has_mail1(dns[2], timeout=0.005)
                if state is not None and t_first is None:
                    t_first = time.monotonic() - t0
                if state is (not want):
                    caught.append(time.monotonic() - t0)
                    at_once += t_first == caught[-1] or caught[-1] - t_first < 0.001
                    break
                time.sleep(0.002)
            else:
                raise SystemExit(f"restart {k}: the started instance never showed the change")
            first.append(t_first)
            C.wait_for(lambda: ready(admin[2]), 30)

        report = {"propagation": stats(spread), "reply": stats(reply),
                  "start_to_first_answer": stats(first), "start_to_change": stats(caught),
                  "first_answer_had_the_change": at_once,
                  "binary": C.bin_info(a.bin)}
        print(json.dumps(report, indent=1))
        print(f"drain on one instance -> in all 3 instances' answers: median {report['propagation']['median_ms']} ms, "
              f"p90 {report['propagation']['p90_ms']} ms, max {report['propagation']['max_ms']} ms "
              f"over {len(spread)} changes (the API's reply: median {report['reply']['median_ms']} ms)")
        print(f"instance started after a change -> first answer {report['start_to_first_answer']['median_ms']} ms, "
              f"answer with the change {report['start_to_change']['median_ms']} ms median, "
              f"{report['start_to_change']['max_ms']} ms max, over {len(caught)} starts; "
              f"the first answer already had it in {at_once}")
        if a.json:
            C.dump_json(a.json, report)
    finally:
        for p in procs:
            if p is not None:
                p.stop()
        pool.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
