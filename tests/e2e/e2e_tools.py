#!/usr/bin/python3
"""Small helpers for mta-failover.sh: read the sinks' received.log files and Postfix's log.

    e2e_tools.py counts SINKDIR PREFIX        per-host deliveries of messages tagged PREFIX*
    e2e_tools.py delivered SINKDIR PREFIX     how many distinct PREFIX* messages arrived
    e2e_tools.py first SINKDIR SITE PREFIX T  earliest arrival (unix time) of PREFIX* at SITE after T
    e2e_tools.py attempts MAILLOG OFF0 OFF1 T ADDR...
                                              Postfix SMTP-client lines naming [ADDR] among those
                                              written between byte offsets OFF0 and OFF1 of the
                                              log: how many logged at or after T, how many before
    e2e_tools.py audit SINKDIR TOTAL          duplicates, untagged messages, grand total

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
    else:
        sys.exit("unknown command %s" % cmd)


if __name__ == "__main__":
    main(sys.argv)
