#!/usr/bin/python3
"""Throughput: smarthostd beside the peer DNS servers and the floor, on one workload.

What it measures
  The bench workload (zone smarthost.internal; sites oxford 2 relays, cambridge 2, london 1;
  fake SMTP relays from common.py on NET.11/.12/.21/.22/.31:25, NET = --net, default 127.0.46)
  served by each of:
    floor       bench/floor/floor_udp.c, compiled here: a prepared reply of the real answer's
                size per question, only the ID patched (the least a UDP server can cost)
    gdnsd       peers/gdnsd.*: health-checked (tcp_connect 25, its default timing); its MX is
                static and names two dynamic names (2 MX), its oxford A is one site's relays
    knot, nsd   peers/static.zone, no health checks: smarthostd's answers frozen
    pdns        peers/pdns.*: LUA records over ifportup(25) (optional: only if installed)
    hickory     peers/hickory.toml + static.zone (optional: only if a binary is present)
    smarthostd  target/release/smarthostd with the workload in its own config, default probes
  For run 1..RUNS, for each query (oxford MX, mail1.oxford A, oxford A), for each server (the
  order rotated every run and reversed every other run, so no server always goes first or
  follows the same neighbour) one bounded dnsperf: `dnsperf -c 8 -T 1 -q 100 -l DURATION`, one
  query name per run, dnsperf pinned to --loadgen-cpu (0) and every thread of every process of
  the server to --server-cpu (1), re-applied and checked before each run.  Then the same over
  TCP (`-m tcp`) for --tcp-servers (knot, smarthostd) on oxford MX.
  Per run: queries/s, average latency, lost queries and response codes (dnsperf); the server's
  CPU time (utime + stime of its whole process tree, /proc/PID/stat), hence its CPU % and the
  queries it answered per CPU-second: the fair figure on 2 shared cores, where dnsperf is
  often the bottleneck and the q/s column says more about dnsperf than about the server; the
  whole machine's CPU (/proc/stat), hence the work of other processes during the run; the load
  average; whether another dnsperf was running (then the run is worthless and flagged).
  Per server: idle RSS (VmRSS summed over its process tree, after start and 2 s of rest), peak
  RSS at the end (VmHWM), and its answer to each query (records, bytes; dnspython, no EDNS,
  as dnsperf sends them).
  Report (stdout and OUTDIR/report.md): medians over the runs; ratios of queries per server
  CPU-second to the floor's and to gdnsd's.  Raw figures in OUTDIR/results.json.

How to run (bench/compare.sh builds smarthostd first and wraps this in a timeout)
    /usr/bin/python3 bench/peers.py OUTDIR                       # every installed server
    /usr/bin/python3 bench/peers.py OUTDIR --servers floor,knot,smarthostd --runs 1 --duration 5
    /usr/bin/python3 bench/peers.py OUTDIR --report              # the report again, from OUTDIR
  Options: --runs 3 (1..10) --duration 10 (1..60 s) --qtypes oxford-MX,mail1-A,oxford-A
  --tcp-servers knot,smarthostd ("" for none) --net 127.0.46 --base-port 5380 (floor 5380,
  gdnsd +1, knot +2, nsd +3, pdns +4, hickory +5, smarthostd +6) --admin-port 8095 --bin PATH
  --hickory-bin PATH --loadgen-cpu 0 --server-cpu 1.
  Needs root (relays on port 25), dnsperf, taskset, cc, Debian's /usr/bin/python3 with
  python3-dnspython, and the peers' Debian packages (bench/setup.sh).
  Refuses to start when any of its ports or relay addresses is taken.  Bounded: dnsperf runs
  -l DURATION and is killed after DURATION + 30 s; every wait has a bound; the whole run stops
  at --max-minutes (default: twice the planned time + 5 min).  Every process is started by
  PID (recorded in OUTDIR/pids/) and stopped by PID on exit, also on SIGTERM.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
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
import dns.rrset  # noqa: E402

PEERS = os.path.join(C.BENCH, "peers")
FLOOR_SRC = os.path.join(C.BENCH, "floor", "floor_udp.c")
DNS_IP = "127.0.0.1"
# every server this runner knows, in report order; the index is the port offset
SERVERS = ["floor", "gdnsd", "knot", "nsd", "pdns", "hickory", "smarthostd"]
HEALTH_CHECKED = {"gdnsd", "pdns", "smarthostd"}
QUERIES = {"oxford-MX": ("oxford", "MX"), "mail1-A": ("mail1.oxford", "A"),
           "oxford-A": ("oxford", "A"),
           # the DO workload: the same names asked with DO set (dnsperf -D), and an NXDOMAIN
           "oxford-MX-DO": ("oxford", "MX"), "mail1-A-DO": ("mail1.oxford", "A"),
           "nope-DO": ("nope", "A")}
DO_QUERIES = {"oxford-MX-DO", "mail1-A-DO", "nope-DO"}
LABEL = {"oxford-MX": "oxford MX", "mail1-A": "mail1.oxford A", "oxford-A": "oxford A",
         "oxford-MX-DO": "oxford MX with DO", "mail1-A-DO": "mail1.oxford A with DO",
         "nope-DO": "nope A (NXDOMAIN) with DO"}
DNSPERF = ["-c", "8", "-T", "1", "-q", "100"]
# a run during which other work took more than this many cores is counted as disturbed
BUSY_CORES = 0.5
OX_HOSTS = [h for s, h, _ in C.BENCH_RELAYS if s == "oxford"]


def fqdn(name):
    return f"{name}.{C.ZONE}"


# ------------------------------------------------------------------ configs
def render(template, dest, **values):
    """peers/TEMPLATE with {{key}} replaced, written to dest; a placeholder left unfilled is an
    error, not a silently broken config."""
    with open(os.path.join(PEERS, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", str(v))
    if "{{" in text:
        raise SystemExit(f"peers/{template}: unfilled placeholder near "
                         f"{text[text.index('{{'):text.index('{{') + 20]!r}")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "w") as f:
        f.write(text)


def floor_replies(net):
    """The floor's prepared replies, one per question, with the sizes of smarthostd's answers
    with every relay up: oxford MX = 5 MX (10: oxford, 20: the rest) + the 5 relays' A records
    as additional data; oxford A = the two oxford relays; mail1.oxford A = one address."""
    def reply(name, qtype, answer, additional=()):
        r = dns.message.make_response(dns.message.make_query(fqdn(name), qtype, use_edns=False))
        r.flags |= dns.flags.AA
        r.answer = list(answer)
        r.additional = list(additional)
        return r.to_wire()
    addr = {(s, h): C.bench_addr(net, o) for s, h, o in C.BENCH_RELAYS}
    mx = dns.rrset.from_text_list(fqdn("oxford") + ".", 30, "IN", "MX", [
        f"{10 if s == 'oxford' else 20} {fqdn(f'{h}.{s}')}." for s, h, _ in C.BENCH_RELAYS])
    glue = [dns.rrset.from_text(fqdn(f"{h}.{s}") + ".", 30, "IN", "A", a) for (s, h), a in addr.items()]
    return {
        "oxford-MX": reply("oxford", "MX", [mx], glue),
        "oxford-A": reply("oxford", "A", [dns.rrset.from_text_list(
            fqdn("oxford") + ".", 30, "IN", "A", [addr[("oxford", h)] for h in OX_HOSTS])]),
        "mail1-A": reply("mail1.oxford", "A", [dns.rrset.from_text(
            fqdn("mail1.oxford") + ".", 30, "IN", "A", addr[("oxford", "mail1")])]),
    }


def signed_replies(port, d):
    """smarthostd's signed answers to the DO workload's questions, as it sends them (the bytes
    received, ID and all): the floor's replies for those questions, so that it sends replies of
    exactly the same size."""
    files = []
    for k in sorted(DO_QUERIES):
        name, qtype = QUERIES[k]
        q = dns.message.make_query(fqdn(name), qtype, use_edns=0, want_dnssec=True, payload=4096)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            sock.sendto(q.to_wire(), (DNS_IP, port))
            wire, _ = sock.recvfrom(65535)
        files.append("do:" + os.path.join(d, f"reply-{k}.bin"))
        with open(files[-1][3:], "wb") as f:
            f.write(wire)
    return files


def prepare(name, d, a, port, bound_s):
    """Writes NAME's config into its run directory d; returns its argv."""
    if name == "floor":
        exe = os.path.join(d, "floor_udp")
        r = subprocess.run(["cc", "-O2", "-o", exe, FLOOR_SRC], capture_output=True, text=True,
                           timeout=120)
        if r.returncode:
            raise SystemExit(f"cc {FLOOR_SRC} failed:\n{r.stderr}")
        files = []
        for k, wire in floor_replies(a.net).items():
            files.append(os.path.join(d, f"reply-{k}.bin"))
            with open(files[-1], "wb") as f:
                f.write(wire)
        if a.do_source:
            files += signed_replies(a.do_source, d)
        return [exe, DNS_IP, str(port), str(int(bound_s))] + files
    if name == "gdnsd":
        render("gdnsd.config", os.path.join(d, "config"), dir=d, port=port, net=a.net)
        render("gdnsd.zone", os.path.join(d, "zones", C.ZONE), net=a.net)
        return ["gdnsd", "-c", d, "start"]
    if name == "knot":
        render("knot.conf", os.path.join(d, "knot.conf"), dir=d, port=port)
        render("static.zone", os.path.join(d, "static.zone"), net=a.net)
        return ["knotd", "-c", os.path.join(d, "knot.conf")]
    if name == "nsd":
        render("nsd.conf", os.path.join(d, "nsd.conf"), dir=d, port=port)
        render("static.zone", os.path.join(d, "static.zone"), net=a.net)
        return ["nsd", "-d", "-c", os.path.join(d, "nsd.conf")]
    if name == "pdns":
        render("pdns.conf", os.path.join(d, "pdns.conf"), dir=d, port=port)
        render("pdns.named.conf", os.path.join(d, "named.conf"), dir=d)
        render("pdns.zone", os.path.join(d, "pdns.zone"), net=a.net)
        return ["pdns_server", f"--config-dir={d}"]
    if name == "hickory":
        render("hickory.toml", os.path.join(d, "hickory.toml"), dir=d, port=port)
        render("static.zone", os.path.join(d, "static.zone"), net=a.net)
        os.chmod(d, 0o755)  # it drops privileges and must still read its zone
        for f in os.listdir(d):
            os.chmod(os.path.join(d, f), 0o644)
        return [a.hickory_bin, "-q", "-c", os.path.join(d, "hickory.toml")]
    if name == "smarthostd":
        # Signed (a key made by its own keygen): the DO workload gets signed answers; the
        # answers to queries without DO are the same bytes as unsigned.
        cfg = C.write_config(d, port, a.admin_port, C.bench_sites(a.net),
                             extra_tables='[dnssec]\nkey_dir = "keys"\n')
        r = subprocess.run([a.bin, "dnssec", "keygen", "--config", cfg], capture_output=True,
                           text=True, timeout=60)
        if r.returncode:
            raise SystemExit(f"smarthostd dnssec keygen failed:\n{r.stdout}{r.stderr}")
        return [a.bin, "serve", "--config", cfg]
    raise ValueError(name)


def binary_of(name, a):
    return {"floor": "cc", "gdnsd": "gdnsd", "knot": "knotd", "nsd": "nsd", "pdns": "pdns_server",
            "hickory": a.hickory_bin, "smarthostd": a.bin}[name]


def available(name, a):
    b = binary_of(name, a)
    return os.access(b, os.X_OK) if os.sep in b else shutil.which(b) is not None


# ------------------------------------------------------------------ answers
def ask(port, qkey, timeout=1.0):
    """(rcode text, message or None) for one query of qkey, without EDNS like dnsperf (with DO
    for the DO workload, as dnsperf -D sends it)."""
    name, qtype = QUERIES[qkey]
    if qkey in DO_QUERIES:
        q = dns.message.make_query(fqdn(name), qtype, use_edns=0, want_dnssec=True, payload=4096)
    else:
        q = dns.message.make_query(fqdn(name), qtype, use_edns=False)
    try:
        r = dns.query.udp(q, DNS_IP, port=port, timeout=timeout)
    except (dns.exception.Timeout, OSError) as e:
        return type(e).__name__, None
    return dns.rcode.to_text(r.rcode()), r


def values(msg, rdtype):
    return [rd for rr in (msg.answer if msg else []) if rr.rdtype == rdtype for rd in rr]


def steady(name, port, net):
    """True when a health-checked server answers as with every relay up: oxford A is exactly
    the oxford relays, and (pdns, smarthostd: the servers whose MX is live) oxford MX leads
    with exactly them.  The others are always steady."""
    if name not in HEALTH_CHECKED:
        return True
    ox_addrs = {C.bench_addr(net, o) for s, _, o in C.BENCH_RELAYS if s == "oxford"}
    _, r = ask(port, "oxford-A", 0.5)
    if {rd.to_text() for rd in values(r, dns.rdatatype.A)} != ox_addrs:
        return False
    if name == "gdnsd":
        return True
    _, r = ask(port, "oxford-MX", 0.5)
    mx = values(r, dns.rdatatype.MX)
    if not mx:
        return False
    best = min(rd.preference for rd in mx)
    return {rd.exchange.to_text() for rd in mx if rd.preference == best} == \
        {fqdn(f"{h}.oxford") + "." for h in OX_HOSTS}


def describe(msg):
    """'5 MX + 5 A, 214 B': the answer's records, then the additional section's."""
    if msg is None:
        return None
    def count(section):
        n = {}
        for rr in section:
            if rr.rdtype != dns.rdatatype.OPT:
                t = dns.rdatatype.to_text(rr.rdtype)
                n[t] = n.get(t, 0) + len(rr)
        return " ".join(f"{v} {t}" for t, v in n.items())
    an, au, ad = count(msg.answer), count(msg.authority), count(msg.additional)
    txt = an or "empty"
    if au:
        txt += f" (auth. {au})"
    if ad:
        txt += f" + {ad}"
    return f"{txt}, {len(msg.to_wire())} B"


# ------------------------------------------------------------------ one measured run
def proc_stat():
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def measure(name, srv, port, qfile, a, tcp, dnssec_ok=False):
    pids = C.descendants(srv.pid)
    unpinned = C.pin_threads(pids, {a.server_cpu})
    off = C.threads_off(pids, {a.server_cpu})
    foreign = C.processes_named("dnsperf")
    argv = ["taskset", "-c", str(a.loadgen_cpu), "dnsperf", "-s", DNS_IP, "-p", str(port),
            "-d", qfile, "-l", str(a.duration)] + DNSPERF + (["-m", "tcp"] if tcp else []) + \
        (["-D"] if dnssec_ok else [])
    load = C.loadavg()
    ticks0, st0 = C.tree_cpu_ticks(pids), proc_stat()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    pidfile = os.path.join(a.outdir, "pids", "dnsperf.pid")
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        with open(pidfile, "w") as f:  # for compare.sh, should this process die first
            f.write(f"{p.pid} dnsperf\n")
        try:
            out, _ = p.communicate(timeout=a.duration + 30)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, rc = p.communicate()[0] or "", "timeout"
        finally:
            if p.poll() is None:
                p.kill()
            os.unlink(pidfile)
    wall = time.monotonic() - t0
    ticks1, st1 = C.tree_cpu_ticks(pids), proc_stat()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = C.parse_dnsperf(out)
    cpu_s = (ticks1 - ticks0) / C.CLK
    gen_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    d = [y - x for x, y in zip(st0, st1)]
    busy = (sum(d[:8]) - d[3] - d[4]) / C.CLK / wall
    steal = d[7] / C.CLK / wall if len(d) > 7 else 0.0
    res.update({
        "server": name, "mode": "tcp" if tcp else "udp", "loadavg": load, "wall_s": round(wall, 2),
        "server_cpu_s": round(cpu_s, 2), "server_cpu_pct": round(100 * cpu_s / wall, 1),
        "q_per_cpu_s": round(res["completed"] / cpu_s) if res["completed"] and cpu_s > 0 else None,
        "dnsperf_cpu_pct": round(100 * gen_s / wall, 1),
        # cores busy with anything but this server and this dnsperf (other work on the machine)
        "other_cores": round(max(0.0, busy - steal - cpu_s / wall - gen_s / wall), 2),
        "steal_cores": round(steal, 2),
        # of which niced work (background builds): it gets in when a server sleeps
        "nice_cores": round(d[1] / C.CLK / wall, 2),
        "foreign_dnsperf": foreign, "threads_off_cpu": off + unpinned, "dnsperf_rc": rc,
    })
    if res["qps"] is None:
        res["dnsperf_tail"] = out[-1500:]
    return res


# ------------------------------------------------------------------ report
def med(xs):
    xs = [x for x in xs if x is not None]
    return C.median(xs) if xs else None


def f0(x):
    return "n/a" if x is None else f"{x:,.0f}"


def f3(x):
    return "n/a" if x is None else f"{x:.3f}"


def ratio(x, ref):
    return "n/a" if not x or not ref else f"{x / ref:.2f}×"


def span(xs):
    xs = [x for x in xs if x is not None]
    return f" [{min(xs):,.0f}–{max(xs):,.0f}]" if len(xs) > 1 else ""


def report(data):
    meta, rows = data["meta"], data["results"]
    servers = [s for s in SERVERS if s in meta["servers"]]
    def pick(s, q, mode="udp"):
        return [r for r in rows if r["server"] == s and r["qtype"] == q and r["mode"] == mode]
    def m(s, q, key, mode="udp"):
        return med([r[key] for r in pick(s, q, mode)])
    def label(s):
        v = meta["versions"].get(s)
        return f"{s} {v}" if v else s
    qkeys = meta["qtypes"] + meta.get("do_qtypes", [])
    loads = [float(r["loadavg"].split()[0]) for r in rows]
    other = [r["other_cores"] + r["steal_cores"] for r in rows]
    foreign = sum(1 for r in rows if r["foreign_dnsperf"])
    busy = sum(1 for r in rows if r["other_cores"] + r["steal_cores"] > BUSY_CORES)
    off = sum(1 for r in rows if r["threads_off_cpu"])
    out = [f"## smarthostd beside the peers: {meta['runs']} runs × {meta['duration']} s, medians",
           "",
           f"{meta['started']} – {meta.get('finished', 'unfinished')}; {meta['host']}; "
           f"dnsperf `{' '.join(DNSPERF)} -l {meta['duration']}` on CPU {meta['loadgen_cpu']}, "
           f"every server thread on CPU {meta['server_cpu']}; load average "
           f"{meta['load_start']} at start, {meta.get('load_end', '?')} at the end, "
           f"{min(loads) if loads else 0:.2f}–{max(loads) if loads else 0:.2f} before the runs; other "
           f"work + steal during the runs: median {med(other) or 0:.2f} cores, max "
           f"{max(other) if other else 0:.2f} (runs with more than {BUSY_CORES}: {busy} of {len(rows)}); "
           f"runs with another dnsperf on the machine: {foreign}; "
           f"runs with a server thread off its CPU: {off}.", ""]
    if "oxford-MX" in qkeys:
        a_keys = [q for q in ("mail1-A", "oxford-A") if q in qkeys]
        ref_f = {q: m("floor", q, "q_per_cpu_s") for q in qkeys}
        ref_g = {q: m("gdnsd", q, "q_per_cpu_s") for q in qkeys}
        hdr = ["server", "oxford MX answer", "oxford MX q/s", "MX avg latency",
               "MX per server CPU-s"] + [f"{LABEL[q]} per CPU-s" for q in a_keys] + \
              [f"× floor ({', '.join(LABEL[q] for q in ['oxford-MX'] + a_keys)})",
               "× gdnsd (same)", "RSS idle"]
        out += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
        for s in servers:
            cells = [label(s), meta["answers"].get(s, {}).get("oxford-MX") or "n/a",
                     f0(m(s, "oxford-MX", "qps")),
                     "n/a" if m(s, "oxford-MX", "avg_lat_ms") is None
                     else f"{m(s, 'oxford-MX', 'avg_lat_ms'):.3f} ms",
                     f0(m(s, "oxford-MX", "q_per_cpu_s"))]
            cells += [f0(m(s, q, "q_per_cpu_s")) for q in a_keys]
            ks = ["oxford-MX"] + a_keys
            cells.append(" / ".join(ratio(m(s, q, "q_per_cpu_s"), ref_f[q]) for q in ks))
            cells.append(" / ".join(ratio(m(s, q, "q_per_cpu_s"), ref_g[q]) for q in ks))
            cells.append(f"{meta['idle_rss_kb'].get(s, 0) / 1024:.1f} MiB")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    for q in qkeys:
        ref_f, ref_g = m("floor", q, "q_per_cpu_s"), m("gdnsd", q, "q_per_cpu_s")
        out += [f"### {LABEL[q]} (UDP)", "",
                "| server | answer | q/s [min–max] | avg latency ms | server CPU % | dnsperf CPU % "
                "| queries per server CPU-s [min–max] | × floor | × gdnsd | lost | not NOERROR |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in servers:
            rs = pick(s, q)
            if not rs:
                continue
            bad = sum(n for r in rs for k, n in r["rcodes"].items() if k != "NOERROR")
            e = m(s, q, "q_per_cpu_s")
            out.append(
                f"| {label(s)} | {meta['answers'].get(s, {}).get(q) or 'n/a'} | "
                f"{f0(m(s, q, 'qps'))}{span([r['qps'] for r in rs])} | {f3(m(s, q, 'avg_lat_ms'))} | "
                f"{f0(m(s, q, 'server_cpu_pct'))} | {f0(m(s, q, 'dnsperf_cpu_pct'))} | "
                f"{f0(e)}{span([r['q_per_cpu_s'] for r in rs])} | "
                f"{ratio(e, ref_f)} | {ratio(e, ref_g)} | {sum(r['lost'] or 0 for r in rs):,.0f} | "
                f"{bad:,} |")
        out.append("")
    tcp = [r for r in rows if r["mode"] == "tcp"]
    if tcp:
        tq = meta["tcp_qtypes"]
        for q in tq:
            ref_k = m("knot", q, "q_per_cpu_s", "tcp")
            out += [f"### {LABEL[q]} over TCP (`-m tcp`)", "",
                    "| server | q/s | avg latency ms | server CPU % | dnsperf CPU % "
                    "| queries per server CPU-s | × Knot | lost | not NOERROR |",
                    "|---|---|---|---|---|---|---|---|---|"]
            for s in servers:
                rs = pick(s, q, "tcp")
                if not rs:
                    continue
                bad = sum(n for r in rs for k, n in r["rcodes"].items() if k != "NOERROR")
                e = m(s, q, "q_per_cpu_s", "tcp")
                out.append(f"| {label(s)} | {f0(m(s, q, 'qps', 'tcp'))} | "
                           f"{f3(m(s, q, 'avg_lat_ms', 'tcp'))} | {f0(m(s, q, 'server_cpu_pct', 'tcp'))} | "
                           f"{f0(m(s, q, 'dnsperf_cpu_pct', 'tcp'))} | "
                           f"{f0(e)}{span([r['q_per_cpu_s'] for r in rs])} | {ratio(e, ref_k)} | "
                           f"{sum(r['lost'] or 0 for r in rs):,.0f} | {bad:,} |")
            out.append("")
    out += ["Peak RSS (VmHWM at the end, process tree): " + ", ".join(
        f"{s} {meta.get('hwm_kb', {}).get(s, 0) / 1024:.1f} MiB" for s in servers) + ".",
            f"smarthostd: {meta.get('smarthostd_bin', 'n/a')}.",
            f"Skipped: {', '.join(f'{k} ({v})' for k, v in meta['skipped'].items()) or 'none'}.",
            ""]
    return "\n".join(out)


# ------------------------------------------------------------------ main
def versions(a, servers):
    def pkg(p):
        try:
            r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", p], capture_output=True,
                               text=True, timeout=20)
            return r.stdout.split("-")[0] if r.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None
    def run_v(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            words = (r.stdout or r.stderr).split()
            return words[-1] if words else None
        except (OSError, subprocess.SubprocessError):
            return None
    v = {"gdnsd": pkg("gdnsd"), "knot": pkg("knot"), "nsd": pkg("nsd"), "pdns": pkg("pdns-server"),
         "dnsperf": pkg("dnsperf")}
    if "hickory" in servers:
        v["hickory"] = run_v([a.hickory_bin, "--version"])
    if "smarthostd" in servers:
        v["smarthostd"] = run_v([a.bin, "--version"])
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--report", action="store_true", help="print the report of OUTDIR again")
    ap.add_argument("--check", action="store_true",
                    help="start every server, print its answers and idle RSS, stop: no load")
    ap.add_argument("--servers", default=",".join(SERVERS),
                    help="comma-separated; optional peers that are not installed are skipped")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--qtypes", default="oxford-MX,mail1-A,oxford-A")
    ap.add_argument("--do-qtypes", default="oxford-MX-DO,mail1-A-DO,nope-DO",
                    help="the DO workload (\"\" for none): signed answers, beside the floor")
    ap.add_argument("--do-servers", default="floor,smarthostd")
    ap.add_argument("--tcp-servers", default="knot,smarthostd")
    ap.add_argument("--tcp-qtypes", default="oxford-MX")
    ap.add_argument("--net", default="127.0.46", help="relays on NET.11/.12/.21/.22/.31:25")
    ap.add_argument("--base-port", type=int, default=5380)
    ap.add_argument("--admin-port", type=int, default=8095)
    ap.add_argument("--bin", default=C.DEFAULT_BIN)
    ap.add_argument("--hickory-bin", default=os.environ.get(
        "HICKORY_BIN", shutil.which("hickory-dns") or "/usr/local/bin/hickory-dns"))
    ap.add_argument("--loadgen-cpu", type=int, default=0)
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--max-minutes", type=float)
    a = ap.parse_args()
    results_path = os.path.join(a.outdir, "results.json")
    if a.report:
        with open(results_path) as f:
            print(report(json.load(f)))
        return

    if not 1 <= a.runs <= 10 or not 1 <= a.duration <= 60:
        sys.exit("bounded: --runs 1..10, --duration 1..60")
    qkeys = [q for q in a.qtypes.split(",") if q]
    tqkeys = [q for q in a.tcp_qtypes.split(",") if q]
    do_qkeys = [q for q in a.do_qtypes.split(",") if q]
    for q in do_qkeys:
        if q not in DO_QUERIES:
            sys.exit(f"unknown DO query {q}; known: {', '.join(sorted(DO_QUERIES))}")
    for q in qkeys + tqkeys + do_qkeys:
        if q not in QUERIES:
            sys.exit(f"unknown query {q}; known: {', '.join(QUERIES)}")
    wanted = [s for s in a.servers.split(",") if s]
    for s in wanted:
        if s not in SERVERS:
            sys.exit(f"unknown server {s}; known: {', '.join(SERVERS)}")
    skipped = {}
    for s in wanted:
        if not available(s, a):
            if s in ("pdns", "hickory"):
                skipped[s] = f"{binary_of(s, a)} not installed"
            else:
                sys.exit(f"{s}: {binary_of(s, a)} not found (bench/setup.sh installs the peers; "
                         f"cargo build --release builds smarthostd)")
    servers = [s for s in SERVERS if s in wanted and s not in skipped]
    tcp_servers = [s for s in SERVERS if s in a.tcp_servers.split(",") and s in servers]
    # The DO workload needs smarthostd: the floor's replies to it are smarthostd's own.
    do_servers = [s for s in SERVERS if s in a.do_servers.split(",") and s in servers] \
        if "smarthostd" in servers else []
    if not do_servers:
        do_qkeys = []
    if not servers:
        sys.exit("no server to measure")
    if {a.loadgen_cpu, a.server_cpu} - os.sched_getaffinity(0) or a.loadgen_cpu == a.server_cpu:
        sys.exit(f"need two distinct CPUs: --loadgen-cpu {a.loadgen_cpu} --server-cpu {a.server_cpu}")
    C.check_loopback(C.bench_addr(a.net, 11))
    ports = {s: a.base_port + SERVERS.index(s) for s in servers}
    need = [(DNS_IP, p) for p in ports.values()] + \
           [(C.bench_addr(a.net, o), 25) for _, _, o in C.BENCH_RELAYS]
    if "smarthostd" in servers:
        need.append((DNS_IP, a.admin_port))
    C.require_ports_free(need)
    for tool in ("dnsperf", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} missing (bench/setup.sh)")

    planned = (a.runs * len(qkeys) * len(servers) + a.runs * len(tqkeys) * len(tcp_servers)
               + a.runs * len(do_qkeys) * len(do_servers)) * (a.duration + 3)
    deadline = time.monotonic() + (a.max_minutes * 60 if a.max_minutes else 2 * planned + 300)
    os.makedirs(os.path.join(a.outdir, "pids"), exist_ok=True)
    work = os.path.join(a.outdir, "run")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chmod(a.outdir, 0o755)
    os.chmod(work, 0o755)
    qfiles = {}
    for k, (n, t) in QUERIES.items():
        qfiles[k] = os.path.join(work, f"query-{k}.txt")
        with open(qfiles[k], "w") as f:
            f.write(f"{fqdn(n)} {t}\n")
    # this process (and the relays' thread) stays off the server's CPU
    os.sched_setaffinity(0, {a.loadgen_cpu})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))

    meta = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "runs": a.runs, "duration": a.duration,
            "servers": servers, "qtypes": qkeys, "tcp_servers": tcp_servers, "tcp_qtypes": tqkeys,
            "do_servers": do_servers, "do_qtypes": do_qkeys,
            "ports": ports, "net": a.net, "skipped": skipped, "loadgen_cpu": a.loadgen_cpu,
            "server_cpu": a.server_cpu, "load_start": C.loadavg(),
            "host": f"{os.cpu_count()} CPUs, Linux {platform.release()}",
            "versions": versions(a, servers)}
    if "smarthostd" in servers:
        meta["smarthostd_bin"] = C.bin_info(a.bin)
    data = {"meta": meta, "results": []}
    procs = {}
    pool = C.RelayPool()
    try:
        pool.set([pool.add(C.bench_addr(a.net, o), 25, fqdn(f"{h}.{s}"))
                  for s, h, o in C.BENCH_RELAYS], "up")
        # the floor last: its DO replies are taken from smarthostd's answers
        a.do_source = None
        for s in sorted(servers, key=lambda s: s == "floor"):
            d = os.path.join(work, s)
            os.makedirs(d)
            if s == "floor" and do_qkeys:
                a.do_source = ports["smarthostd"]
                if not C.wait_for(lambda: steady("smarthostd", ports["smarthostd"], a.net), 120, 0.25):
                    sys.exit("smarthostd never answered as with every relay up (120 s)")
            argv = prepare(s, d, a, ports[s], deadline - time.monotonic() + 60)
            C.log(f"starting {s} on {DNS_IP}:{ports[s]}")
            procs[s] = C.Proc(argv, os.path.join(d, "server.log"), cwd=d, cpus=str(a.server_cpu),
                              env={"NO_COLOR": "1"})
            with open(os.path.join(a.outdir, "pids", f"{s}.pid"), "w") as f:
                f.write(f"{procs[s].pid} {os.path.basename(argv[0])}\n")
            ok = C.wait_for(lambda: not procs[s].alive() or
                            values(ask(ports[s], "mail1-A", 0.2)[1], dns.rdatatype.A), 30, 0.05)
            if not procs[s].alive() or not ok:
                sys.exit(f"{s} did not answer within 30 s; its log ({d}/server.log):\n"
                         f"{procs[s].log_text()[-2500:]}")
        for s in servers:
            if not C.wait_for(lambda: steady(s, ports[s], a.net), 120, 0.25):
                sys.exit(f"{s} never answered as with every relay up (120 s); log:\n"
                         f"{procs[s].log_text()[-2500:]}")
        time.sleep(2)
        meta["idle_rss_kb"] = {s: C.tree_kb(C.descendants(procs[s].pid)) for s in servers}
        meta["idle_pss_kb"] = {s: C.tree_kb(C.descendants(procs[s].pid), "Pss", "smaps_rollup")
                               for s in servers}
        meta["answers"] = {s: {q: describe(ask(ports[s], q)[1]) for q in QUERIES} for s in servers}
        C.log(f"idle RSS kB {meta['idle_rss_kb']}")
        for s in servers:
            C.log(f"{s} answers: {meta['answers'][s]}")
        if a.check:
            for s in servers:
                print(f"{s:10s} {meta['idle_rss_kb'][s] / 1024:6.1f} MiB  " + "; ".join(
                    f"{LABEL[q]}: {meta['answers'][s][q]}" for q in QUERIES))
            return

        plan = [(False, q, servers) for q in qkeys] + [(True, q, tcp_servers) for q in tqkeys] + \
            [(False, q, do_servers) for q in do_qkeys]
        plan = [(tcp, q, ss) for tcp, q, ss in plan if ss]
        total = sum(a.runs * len(ss) for _, _, ss in plan)
        i = 0
        for tcp, q, ss in plan:
            for run in range(a.runs):
                order = ss[run % len(ss):] + ss[:run % len(ss)]
                if run % 2:
                    order.reverse()
                for s in order:
                    i += 1
                    if time.monotonic() > deadline:
                        raise SystemExit("--max-minutes reached; partial results in " + results_path)
                    if not procs[s].alive():
                        raise SystemExit(f"{s} exited; log:\n{procs[s].log_text()[-2500:]}")
                    if not C.wait_for(lambda: steady(s, ports[s], a.net), 30, 0.25):
                        C.log(f"{s} not steady within 30 s: run skipped")
                        continue
                    r = measure(s, procs[s], ports[s], qfiles[q], a, tcp, q in DO_QUERIES)
                    r.update({"qtype": q, "run": run + 1})
                    data["results"].append(r)
                    C.log(f"[{i}/{total}] {r['mode']} {q:9s} run {run + 1} {s:10s} qps {f0(r['qps'])} "
                          f"lat {f3(r['avg_lat_ms'])} ms cpu {r['server_cpu_pct']}% "
                          f"q/cpu-s {f0(r['q_per_cpu_s'])} other {r['other_cores']} load {r['loadavg']}"
                          + (f" ANOTHER DNSPERF {r['foreign_dnsperf']}" if r["foreign_dnsperf"] else ""))
                    C.dump_json(results_path, data)
        meta["hwm_kb"] = {s: C.tree_kb(C.descendants(procs[s].pid), "VmHWM") for s in servers}
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        meta["load_end"] = C.loadavg()
        C.dump_json(results_path, data)
    finally:
        for s in reversed(list(procs)):
            procs[s].stop()
            try:
                os.unlink(os.path.join(a.outdir, "pids", f"{s}.pid"))
            except OSError:
                pass
        pool.close()
    text = report(data)
    with open(os.path.join(a.outdir, "report.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
