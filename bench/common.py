"""Helpers shared by the smarthostd benchmark scripts in this folder (not a benchmark itself).

Self-contained: everything the benchmarks need is in this folder.  Run the scripts with Debian's
/usr/bin/python3 (python3-dnspython and python3-aiosmtpd come from apt; a pyenv `python3` on
PATH usually has neither).

- BENCH_RELAYS / bench_sites(): the bench workload (oxford 2 relays, cambridge 2, london 1),
  the one definition every script here uses.
- RelayPool: THE fake SMTP relay of every Python benchmark (failover, memory, soak, peers,
  probe_load --relays python): asyncio protocols on one event loop (in a thread or in the main
  thread), each on its own loopback address:port, switchable at run time between "up" (220
  greeting, multi-line EHLO 250, QUIT 221), "refused" (listener closed, sessions dropped:
  connection refused) and "hung" (accepts TCP, never greets).  The others differ for a reason:
  fake_smtp_epoll.c is ~3x cheaper per connection, for 10,000 relays probed every 2 s;
  tests/integration/fake_smtp.rs runs inside `cargo test`; tests/e2e/smtp_sink.py stores mail.
- write_config(): a smarthostd config + zone file in a directory.
- Proc / Smarthostd: start a process (optionally pinned to CPUs), stop it by PID (SIGTERM,
  then SIGKILL), log to a file.
- query(): one UDP DNS query with dnspython; parse_dnsperf(): dnsperf's summary as numbers.
- /proc readers (RSS, PSS, CPU ticks, fds, threads; per process or summed over its process
  tree), /metrics reader, percentiles, loadavg.
- `common.py ports-free IP:PORT ...` (for shell scripts): exits 1 naming the addresses a
  benchmark needs that something else holds.

Everything binds or talks to 127.0.0.0/8 only.
"""
import asyncio
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype
except ImportError:  # pragma: no cover
    sys.exit("dnspython missing: run with /usr/bin/python3 (apt python3-dnspython)")

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
DEFAULT_BIN = os.environ.get("SMARTHOSTD_BIN", os.path.join(ROOT, "target/release/smarthostd"))
ZONE = "smarthost.internal"
CLK = os.sysconf("SC_CLK_TCK")

# The bench workload: (site, host, last octet of its address on the script's own /24).  The
# scripts put these relays on different networks (failover 127.0.41, memory 127.0.42, soak
# 127.0.45, peers 127.0.46) so that they can run side by side.
BENCH_RELAYS = [("oxford", "mail1", 11), ("oxford", "mail2", 12), ("cambridge", "mail1", 21),
                ("cambridge", "mail2", 22), ("london", "mail1", 31)]


def bench_addr(net, octet):
    return f"{net}.{octet}"


def bench_sites(net, port=25):
    """The bench workload as write_config() sites: {site: [(host, [NET.octet], port|None)]}."""
    sites = {}
    for site, host, octet in BENCH_RELAYS:
        sites.setdefault(site, []).append((host, [bench_addr(net, octet)], None if port == 25 else port))
    return sites


ZONE_FILE = f"""$ORIGIN {ZONE}.
$TTL 30
@   IN SOA ns1.{ZONE}. hostmaster.{ZONE}. ( 1 3600 600 86400 30 )
@   IN NS  ns1.{ZONE}.
ns1 IN A   127.0.0.1
"""


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def check_loopback(ip):
    if not ipaddress.ip_address(ip).is_loopback:
        raise SystemExit(f"refusing non-loopback address {ip}")


def port_free(ip, port, kind=socket.SOCK_DGRAM):
    check_loopback(ip)
    s = socket.socket(socket.AF_INET, kind)
    if kind == socket.SOCK_STREAM:  # as servers do: TIME_WAIT leftovers do not count as busy
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((ip, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def require_ports_free(pairs):
    """pairs: [(ip, port)]; exits if a UDP or TCP bind fails (another run is using it)."""
    busy = [f"{ip}:{p}" for ip, p in pairs
            if not (port_free(ip, p, socket.SOCK_DGRAM) and port_free(ip, p, socket.SOCK_STREAM))]
    if busy:
        raise SystemExit(f"in use (another benchmark running? pick other addresses or ports): "
                         f"{', '.join(busy)}")


# ------------------------------------------------------------------ fake SMTP relays
HUNG_MAX_S = 60.0  # a hung session is dropped after this long, so nothing grows unbounded
MAX_BUF = 4096


class _Smtp(asyncio.Protocol):
    __slots__ = ("relay", "t", "buf", "timer")

    def __init__(self, relay):
        self.relay = relay
        self.t = None
        self.buf = b""
        self.timer = None

    def connection_made(self, t):
        self.t = t
        r = self.relay
        r.sessions.add(self)
        r.accepted += 1
        r.last_accept = time.monotonic()
        if r.mode == "up":
            t.write(r.banner)
        else:  # hung: accept, never greet; bounded lifetime
            self.timer = r.loop.call_later(HUNG_MAX_S, t.abort)

    def data_received(self, data):
        r = self.relay
        if r.mode != "up" or self.timer is not None:
            return  # a hung session stays silent
        self.buf += data
        if len(self.buf) > MAX_BUF:
            self.t.abort()
            return
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            cmd = line.strip().split(b" ", 1)[0].upper()
            if cmd == b"EHLO":
                self.t.write(r.ehlo)
            elif cmd == b"HELO":
                self.t.write(r.helo)
            elif cmd in (b"NOOP", b"RSET"):
                self.t.write(b"250 OK\r\n")
            elif cmd == b"QUIT":
                self.t.write(r.bye)
                self.t.close()
                return
            else:
                self.t.write(b"502 5.5.2 not implemented\r\n")

    def connection_lost(self, exc):
        self.relay.sessions.discard(self)
        if self.timer is not None:
            self.timer.cancel()


class Relay:
    def __init__(self, loop, ip, port, name):
        check_loopback(ip)
        self.loop, self.ip, self.port, self.name = loop, ip, port, name
        self.mode = "refused"
        self.server = None
        self.sessions = set()
        self.accepted = 0
        self.last_accept = None  # time.monotonic() of the last accepted connection
        self.banner = f"220 {name} ESMTP fake\r\n".encode()
        self.ehlo = (f"250-{name} hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                     f"250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n").encode()
        self.helo = f"250 {name}\r\n".encode()
        self.bye = f"221 2.0.0 {name} bye\r\n".encode()

    async def _listen(self):
        if self.server is None:
            self.server = await self.loop.create_server(
                lambda: _Smtp(self), self.ip, self.port, reuse_address=True, backlog=512)

    def _drop_sessions(self):
        for s in list(self.sessions):
            s.t.abort()

    async def up(self):
        self.mode = "up"
        for s in list(self.sessions):  # sessions accepted while hung stay silent: drop them
            if s.timer is not None:
                s.t.abort()
        await self._listen()

    async def hang(self):
        self.mode = "hung"
        self._drop_sessions()
        await self._listen()

    async def refuse(self):
        self.mode = "refused"
        if self.server is not None:
            self.server.close()  # closes the listening socket now: new connects are refused
            self.server = None
        self._drop_sessions()


class RelayPool:
    """Fake SMTP relays on one asyncio loop.  thread=True runs the loop in a daemon thread and
    the methods below are called from other threads; thread=False leaves the loop to the caller
    (use the async methods of Relay directly)."""

    def __init__(self, thread=True):
        self.relays = {}
        if thread:
            self.loop = asyncio.new_event_loop()
            self.th = threading.Thread(target=self.loop.run_forever, daemon=True)
            self.th.start()
        else:
            self.loop = asyncio.get_event_loop()
            self.th = None

    def add(self, ip, port, name):
        key = (ip, port)
        self.relays[key] = Relay(self.loop, ip, port, name)
        return key

    def _run(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def set(self, keys, mode):
        """mode: up | refused | hung; applied to all keys in one loop turn."""
        async def go():
            for k in keys:
                await getattr(self.relays[k], {"up": "up", "refused": "refuse", "hung": "hang"}[mode])()
        self._run(go())

    def close(self):
        if self.th is None:
            return
        try:
            self.set(list(self.relays), "refused")
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.th.join(5)


# ------------------------------------------------------------------ smarthostd config
def toml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(d, dns_port, admin_port, sites, probe=None, fallback=None, ttl="30s",
                 extra_server="", extra_tables=""):
    """sites: {site: [(host, [addrs], port_or_None)]}; probe: dict of [probe] keys (None = no
    table, i.e. smarthostd's defaults); fallback: {site: [sites]}; extra_tables: more TOML
    after the sites.  Returns the config path."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"{ZONE}.zone"), "w") as f:
        f.write(ZONE_FILE)
    out = [
        "[server]",
        f'listen = ["127.0.0.1:{dns_port}"]',
        f'admin = "127.0.0.1:{admin_port}"',
        f"state_dir = {toml_str(d)}",
        extra_server,
        "",
        "[zone]",
        f'origin = "{ZONE}"',
        f'file = "{ZONE}.zone"',
        f'ttl = "{ttl}"',
        "",
    ]
    if probe:
        out.append("[probe]")
        for k, v in probe.items():
            out.append(f"{k} = {toml_str(v) if isinstance(v, str) else v}")
        out.append("")
    for site, hosts in sites.items():
        out.append(f"[sites.{site}]")
        hs = []
        for name, addrs, port in hosts:
            for a in addrs:
                check_loopback(a)
            h = f'{{ name = "{name}", addresses = [{", ".join(toml_str(a) for a in addrs)}]'
            if port is not None:
                h += f", port = {port}"
            hs.append(h + " }")
        out.append("hosts = [\n  " + ",\n  ".join(hs) + ",\n]")
        if fallback and site in fallback:
            out.append(f"fallback = [{', '.join(toml_str(s) for s in fallback[site])}]")
        out.append("")
    out.append(extra_tables)
    path = os.path.join(d, "smarthost.toml")
    with open(path, "w") as f:
        f.write("\n".join(out))
    return path


# ------------------------------------------------------------------ smarthostd process
class Proc:
    """One process started by PID: argv's output goes to logfile.  cpus: run it under
    `taskset -c CPUS` (exec'd, so the PID is the program's own and every thread and child it
    makes inherits the affinity)."""

    def __init__(self, argv, logfile, env=None, cwd=None, cpus=None):
        self.logfile = logfile
        e = dict(os.environ)
        e.update(env or {})
        if cpus is not None:
            argv = ["taskset", "-c", cpus] + list(argv)
        lf = open(logfile, "ab")
        self.t_spawn = time.monotonic()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf,
                                  stderr=subprocess.STDOUT, env=e, cwd=cwd)
        lf.close()
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=10):
        if self.p.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait(5)
            except ProcessLookupError:
                pass
        return self.p.returncode

    def log_text(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Smarthostd(Proc):
    def __init__(self, binary, config, logfile, env=None, cpus=None):
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} missing: cd {ROOT} && cargo build --release")
        super().__init__([binary, "serve", "--config", config], logfile, env=env, cpus=cpus)


def bin_info(binary):
    """'PATH (built YYYY-mm-dd HH:MM:SS, sha256 XXXXXXXXXXXX; git HEAD abcdef0[+dirty])'."""
    import hashlib
    try:
        st = os.stat(binary)
        with open(binary, "rb") as f:
            h = hashlib.sha256(f.read()).hexdigest()[:12]
        built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime))
    except OSError:
        return f"{binary} (missing)"
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "Cargo.toml",
                                "Cargo.lock"], capture_output=True, text=True, timeout=10).stdout.strip()
        head += "+dirty src" if dirty else ""
    except (OSError, subprocess.SubprocessError):
        head = "?"
    return f"{binary} (built {built}, sha256 {h}; git HEAD now {head})"


# ------------------------------------------------------------------ DNS
def query(port, qname, qtype, timeout=1.0, ip="127.0.0.1"):
    """(status, values, latency_s); EDNS0 with a 1232-byte payload, RD clear.  status: NOERROR
    (with data), NODATA, NXDOMAIN, SERVFAIL, other rcode text, TRUNCATED, TIMEOUT or ERROR.  MX values are (preference, exchange) tuples."""
    check_loopback(ip)
    q = dns.message.make_query(qname, qtype, use_edns=0, payload=1232)  # like a resolver
    q.flags &= ~dns.flags.RD
    t = time.monotonic()
    try:
        r = dns.query.udp(q, ip, port=port, timeout=timeout)
    except dns.exception.Timeout:
        return "TIMEOUT", [], time.monotonic() - t
    except OSError as e:  # e.g. ICMP port unreachable while the server is down
        return "ERROR", [str(e)], time.monotonic() - t
    lat = time.monotonic() - t
    rc = r.rcode()
    if rc != dns.rcode.NOERROR:
        return dns.rcode.to_text(rc), [], lat
    if r.flags & dns.flags.TC:
        return "TRUNCATED", [], lat
    rt = dns.rdatatype.from_text(qtype)
    vals = []
    for rrset in r.answer:
        if rrset.rdtype == rt:
            for rd in rrset:
                vals.append((rd.preference, rd.exchange.to_text()) if rt == dns.rdatatype.MX
                            else rd.to_text())
    return ("NOERROR" if vals else "NODATA"), vals, lat


def dump_json(path, obj):
    """Writes obj to path atomically (a reader never sees half a file)."""
    import json
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def wait_for(pred, timeout, every=0.05):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        v = pred()
        if v:
            return v
        time.sleep(every)
    return None


def parse_dnsperf(out):
    """dnsperf's summary as numbers (None when absent): qps, avg_lat_ms, lat_sd_ms, sent,
    completed, lost, rcodes {NOERROR: n, ...}."""
    def num(pat):
        m = re.search(pat, out)
        return float(m.group(1)) if m else None
    m = re.search(r"Response codes:\s+(.*)", out)
    rcodes = {k: int(v) for k, v in re.findall(r"([A-Z]+) (\d+) \(", m.group(1))} if m else {}
    lat, sd = num(r"Average Latency \(s\):\s+([\d.]+)"), num(r"Latency StdDev \(s\):\s+([\d.]+)")
    return {"qps": num(r"Queries per second:\s+([\d.]+)"),
            "avg_lat_ms": None if lat is None else lat * 1000,
            "lat_sd_ms": None if sd is None else sd * 1000,
            "sent": num(r"Queries sent:\s+(\d+)"),
            "completed": num(r"Queries completed:\s+(\d+)"),
            "lost": num(r"Queries lost:\s+(\d+)"),
            "rcodes": rcodes}


# ------------------------------------------------------------------ /proc
def proc_status(pid, key):
    """kB value of a /proc/PID/status line (VmRSS, VmHWM, ...) or Threads count."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_ticks(pid):
    """utime + stime of the process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def cpu_user_sys(pid):
    """(utime, stime) of the process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    return int(fields[11]), int(fields[12])


def descendants(pid):
    """pid and every process below it (NSD forks its servers), from /proc."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                kids.setdefault(int(st[st.rindex(")") + 2:].split()[1]), []).append(int(d))
            except (OSError, ValueError):
                pass
    out, todo = [], [pid]
    while todo and len(out) < 10000:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_cpu_ticks(pids):
    """utime + stime summed over pids (each with all its threads), in clock ticks."""
    tot = 0
    for p in pids:
        try:
            tot += cpu_ticks(p)
        except (OSError, ValueError):
            pass
    return tot


def tree_kb(pids, key="VmRSS", path="status"):
    """A kB field summed over pids: VmRSS / VmHWM from status, Pss from smaps_rollup."""
    tot = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/{path}") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        tot += int(line.split()[1])
                        break
        except OSError:
            pass
    return tot


def pin_threads(pids, cpus):
    """Sets the CPU affinity of every thread of pids; returns the threads that could not be
    pinned (gone, or refusing)."""
    failed = 0
    for p in pids:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                os.sched_setaffinity(int(t), cpus)
            except OSError:
                failed += 1
    return failed


def threads_off(pids, cpus):
    """Threads of pids allowed on a CPU outside cpus (checked before each measured run)."""
    n = 0
    for p in pids:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                n += not os.sched_getaffinity(int(t)) <= set(cpus)
            except OSError:
                pass
    return n


def processes_named(comm):
    """PIDs whose /proc/PID/comm is comm (read-only: to see another benchmark running)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() == comm:
                        out.append(int(d))
            except OSError:
                pass
    return out


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def box_busy():
    """(busy_jiffies, total_jiffies) of the whole machine, for a busy share between two calls."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    total = sum(v[:8])
    return total - v[3] - v[4], total


# ------------------------------------------------------------------ admin /metrics
_METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def metrics(admin, timeout=2.0):
    """{(name, labels): value} from http://ADMIN/metrics ({} when unreachable)."""
    try:
        with urllib.request.urlopen(f"http://{admin}/metrics", timeout=timeout) as r:
            txt = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in txt.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC.match(line)
        if m:
            try:
                out[(m.group(1), m.group(2) or "")] = float(m.group(3))
            except ValueError:
                pass
    return out


def metric_sum(ms, name):
    return sum(v for (n, _), v in ms.items() if n == name)


# ------------------------------------------------------------------ stats
def pct(xs, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


# ------------------------------------------------------------------ command line (shell scripts)
def main(argv):
    if len(argv) >= 2 and argv[0] == "ports-free":
        pairs = []
        for x in argv[1:]:
            ip, _, port = x.rpartition(":")
            pairs.append((ip, int(port)))
        require_ports_free(pairs)
        return
    sys.exit("usage: common.py ports-free IP:PORT [IP:PORT ...]")


if __name__ == "__main__":
    main(sys.argv[1:])
