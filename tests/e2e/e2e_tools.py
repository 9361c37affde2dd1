#!/usr/bin/python3
"""Small helpers for mta-failover.sh and matrix.sh: read the sinks' received.log files and Postfix's log.

    e2e_tools.py counts SINKDIR PREFIX        per-host deliveries of messages tagged PREFIX*
    e2e_tools.py delivered SINKDIR PREFIX     how many distinct PREFIX* messages arrived
    e2e_tools.py first SINKDIR SITE PREFIX T  earliest arrival (unix time) of PREFIX* at SITE after T
    e2e_tools.py attempts MAILLOG OFF0 OFF1 T ADDR...
                                              Postfix SMTP-client lines naming [ADDR] among those
                                              written between byte offsets OFF0 and OFF1 of the
                                              log: how many logged at or after T, how many before
    e2e_tools.py audit SINKDIR TOTAL          duplicates, untagged messages, grand total
    e2e_tools.py exim-attempts MAINLOG OFF0 OFF1 T ADDR...
                                              the same as attempts, for Exim's mainlog written with
                                              log_selector +millisec ("2026-01-02 03:04:05.678 ...")
    e2e_tools.py stamped-attempts LOG OFF0 OFF1 T ADDR...
                                              the same, for a log whose lines start "<unix time> "
                                              (OpenSMTPD's, stamped as it is written): lines
                                              "mta connecting address=smtp://ADDR:port"
    e2e_tools.py inject HOST PORT PHASE FROM TO
                                              submits messages tagged PHASE-FROM .. PHASE-TO over SMTP
                                              (one session) to the MTA listening at HOST:PORT
    e2e_tools.py watch T_END INTERVAL STATE SERVER...
                                              asks each SERVER (port 53) for oxford.smarthost.internal A
                                              every INTERVAL seconds until each has shown STATE (oxford:
                                              oxford's addresses only; remote: cambridge's only) or unix
                                              time T_END; prints "<unix time> <server>" for each when it
                                              first did
    e2e_tools.py first-answer SERVER TIMEOUT  polls SERVER for oxford.smarthost.internal A every 20 ms
                                              until it answers; prints "<unix time> <state> <addresses>"

A sink directory is SINKDIR/<site>-<host>/received.log with lines "<unix time> <tag> <peer>".
Postfix's maillog_file stamps lines to the second ("Nov 23 13:18:42", local time), so an event
logged in second s happened in [s, s+1): `attempts` counts a line as "at or after T" only when
s >= ceil(T), i.e. a line in the second that straddles T is given the benefit of the doubt.
"""

import glob
import math
import os
import re
import sys
import time


def read_sinks(sinkdir):
    """Yields (site, host, unix_time, tag, peer) for every stored message."""
    for path in sorted(glob.glob(os.path.join(sinkdir, "*", "received.log"))):
        site, host = os.path.basename(os.path.dirname(path)).split("-", 1)
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    yield site, host, float(parts[0]), parts[1], parts[2] if len(parts) > 2 else "?"


def hosts(sinkdir):
    return sorted(os.path.basename(d) for d in glob.glob(os.path.join(sinkdir, "*")) if os.path.isdir(d))


def cmd_counts(sinkdir, prefix):
    counts = {h: 0 for h in hosts(sinkdir)}
    for site, host, _t, tag, _p in read_sinks(sinkdir):
        if tag.startswith(prefix):
            counts["%s-%s" % (site, host)] = counts.get("%s-%s" % (site, host), 0) + 1
    for h in sorted(counts):
        print(h, counts[h])


def cmd_delivered(sinkdir, prefix):
    print(len({tag for _s, _h, _t, tag, _p in read_sinks(sinkdir) if tag.startswith(prefix)}))


def cmd_first(sinkdir, site, prefix, after):
    after = float(after)
    times = [t for s, _h, t, tag, _p in read_sinks(sinkdir) if s == site and tag.startswith(prefix) and t >= after]
    print("%.6f" % min(times) if times else "none")


MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
STAMP = re.compile(r"^(\w{3})\s+(\d+) (\d\d):(\d\d):(\d\d) \S+ (\S+?)(?:\[\d+\])?: (.*)$")


def log_time(mon, day, hh, mm, ss):
    now = time.time()
    year = time.localtime(now).tm_year
    t = time.mktime((year, MONTHS[mon], int(day), int(hh), int(mm), int(ss), 0, 0, -1))
    if t > now + 86400:  # a line from last December read in January
        t = time.mktime((year - 1, MONTHS[mon], int(day), int(hh), int(mm), int(ss), 0, 0, -1))
    return t


def cmd_attempts(maillog, off0, off1, after, addrs):
    threshold = math.ceil(float(after))
    needles = ["[%s]" % a for a in addrs]
    before = after_count = 0
    shown = []
    with open(maillog, "rb") as f:
        f.seek(int(off0))
        chunk = f.read(int(off1) - int(off0)).decode("utf-8", "replace")
        for line in chunk.splitlines():
            m = STAMP.match(line.rstrip("\n"))
            if not m or not m.group(6).endswith("/smtp"):
                continue
            if not any(n in m.group(7) for n in needles):
                continue
            t = log_time(*m.group(1, 2, 3, 4, 5))
            if t >= threshold:
                after_count += 1
                shown.append(line.rstrip("\n"))
            else:
                before += 1
    print(after_count, before)
    for line in shown[:20]:
        print("  " + line, file=sys.stderr)


def cmd_audit(sinkdir, total):
    seen = {}
    untagged = 0
    for site, host, _t, tag, _p in read_sinks(sinkdir):
        if tag == "-":
            untagged += 1
            continue
        seen.setdefault(tag, []).append("%s-%s" % (site, host))
    dups = {t: w for t, w in seen.items() if len(w) > 1}
    print("stored=%d distinct=%d duplicates=%d untagged=%d expected=%s"
          % (sum(len(w) for w in seen.values()) + untagged, len(seen), len(dups), untagged, total))
    for t, w in sorted(dups.items())[:10]:
        print("  duplicate %s at %s" % (t, ",".join(w)))
    ok = len(seen) == int(total) and not dups and untagged == 0
    sys.exit(0 if ok else 1)


EXIM_STAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3}) (.*)$")


def cmd_exim_attempts(mainlog, off0, off1, after, addrs):
    """Exim mainlog lines naming [ADDR] (a delivery or a failed connection), split at T."""
    after = float(after)
    needles = ["[%s]" % a for a in addrs]
    before = after_count = 0
    shown = []
    with open(mainlog, "rb") as f:
        f.seek(int(off0))
        chunk = f.read(int(off1) - int(off0)).decode("utf-8", "replace")
    for line in chunk.splitlines():
        m = EXIM_STAMP.match(line)
        if not m or not any(n in m.group(8) for n in needles):
            continue
        y, mo, d, hh, mm, ss, ms = (int(x) for x in m.group(1, 2, 3, 4, 5, 6, 7))
        t = time.mktime((y, mo, d, hh, mm, ss, 0, 0, -1)) + ms / 1000.0
        if t >= after:
            after_count += 1
            shown.append(line)
        else:
            before += 1
    print(after_count, before)
    for line in shown[:20]:
        print("  " + line, file=sys.stderr)


def cmd_stamped_attempts(logfile, off0, off1, after, addrs):
    after = float(after)
    pat = re.compile(r"(?<![0-9.])(%s)(?![0-9])" % "|".join(re.escape(a) for a in addrs))
    before = after_count = 0
    shown = []
    with open(logfile, "rb") as f:
        f.seek(int(off0))
        chunk = f.read(int(off1) - int(off0)).decode("utf-8", "replace")
    for line in chunk.splitlines():
        stamp, _, rest = line.partition(" ")
        try:
            t = float(stamp)
        except ValueError:
            continue
        if "connecting" not in rest or not pat.search(rest):
            continue
        if t >= after:
            after_count += 1
            shown.append(line)
        else:
            before += 1
    print(after_count, before)
    for line in shown[:20]:
        print("  " + line, file=sys.stderr)


def cmd_inject(host, port, phase, first, last):
    import smtplib

    s = smtplib.SMTP(host, int(port), timeout=30)
    s.ehlo("inject.e2e.test")
    for i in range(int(first), int(last) + 1):
        tag = "%s-%05d" % (phase, i)
        msg = ("From: sender@mta.e2e.test\r\nTo: rcpt@dest.e2e.test\r\nSubject: e2e %s\r\n"
               "X-E2E-Tag: %s\r\n\r\nmessage %s\r\n" % (tag, tag, tag))
        s.sendmail("sender@mta.e2e.test", ["rcpt@dest.e2e.test"], msg)
    s.quit()


def dns_a(server, timeout=0.3):
    """oxford.smarthost.internal A from SERVER:53: a list of addresses, or None (no answer)."""
    import random
    import socket
    import struct

    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in b"oxford.smarthost.internal".split(b"."):
        q += bytes([len(label)]) + label
    q += b"\x00" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, (server, 53))
        while True:
            r = s.recv(4096)
            if len(r) >= 12 and struct.unpack(">H", r[:2])[0] == qid:
                break
    except OSError:
        return None
    finally:
        s.close()
    flags, qd, an = struct.unpack(">HHH", r[2:8])
    if flags & 0xF != 0:
        return None
    pos = 12

    def skip_name(p):
        while True:
            n = r[p]
            if n == 0:
                return p + 1
            if n & 0xC0 == 0xC0:
                return p + 2
            p += n + 1

    for _ in range(qd):
        pos = skip_name(pos) + 4
    addrs = []
    for _ in range(an):
        pos = skip_name(pos)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", r[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            addrs.append(socket.inet_ntoa(r[pos:pos + 4]))
        pos += rdlen
    return sorted(addrs)


def a_state(addrs):
    if addrs is None:
        return "none"
    if addrs and all(a.startswith("10.99.1.") for a in addrs):
        return "oxford"
    if addrs and all(a.startswith("10.99.2.") for a in addrs):
        return "remote"
    return "other"


def cmd_watch(t_end, interval, state, servers):
    """Polls every server each INTERVAL until all have shown STATE (or T_END); prints, per server,
    "<unix time> <server>" when it first did."""
    t_end, interval = float(t_end), float(interval)
    seen = {}
    for _ in range(int((t_end - time.time()) / interval) + 2):
        if time.time() >= t_end or len(seen) == len(servers):
            break
        for srv in servers:
            if srv not in seen and a_state(dns_a(srv, 0.1)) == state:
                seen[srv] = time.time()
                print("%.6f %s" % (seen[srv], srv), flush=True)
        time.sleep(interval)
    sys.exit(0 if len(seen) == len(servers) else 1)


def cmd_first_answer(server, timeout):
    deadline = time.time() + float(timeout)
    while time.time() < deadline:
        addrs = dns_a(server, 0.1)
        if addrs is not None:
            print("%.6f %s %s" % (time.time(), a_state(addrs), ",".join(addrs)))
            return
        time.sleep(0.02)
    print("%.6f none -" % time.time())
    sys.exit(1)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "counts":
        cmd_counts(*args)
    elif cmd == "delivered":
        cmd_delivered(*args)
    elif cmd == "first":
        cmd_first(*args)
    elif cmd == "attempts":
        cmd_attempts(args[0], args[1], args[2], args[3], args[4:])
    elif cmd == "audit":
        cmd_audit(*args)
    elif cmd == "exim-attempts":
        cmd_exim_attempts(args[0], args[1], args[2], args[3], args[4:])
    elif cmd == "stamped-attempts":
        cmd_stamped_attempts(args[0], args[1], args[2], args[3], args[4:])
    elif cmd == "inject":
        cmd_inject(*args)
    elif cmd == "watch":
        cmd_watch(args[0], args[1], args[2], args[3:])
    elif cmd == "first-answer":
        cmd_first_answer(*args)
    else:
        sys.exit("unknown command %s" % cmd)


if __name__ == "__main__":
    main(sys.argv)
