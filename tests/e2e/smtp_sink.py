#!/usr/bin/python3
"""An SMTP sink standing in for one smart host (relay) of one site.

Not bench/common.py's relays: those only greet probes; this one stores the mail Postfix sends.

Run with Debian's /usr/bin/python3 (python3-aiosmtpd), inside the site's network namespace:

    smtp_sink.py --listen 10.99.1.11:25 --dir WORK/sinks/oxford-mail1 --name mail1.oxford

Every accepted message is stored as DIR/messages/NNNNNN.eml before the final 250 is sent, and a
line "<unix time> <X-E2E-Tag header or -> <peer ip>" is appended to DIR/received.log (flushed at
once), so the test counts deliveries per site and host and times the first one after an outage.
DIR/ready is written once the listening socket is up. With --tls-cert and --tls-key the sink offers
STARTTLS with that certificate (dane.sh's relays); every connection is then also logged as
"<unix time> <peer ip>" to DIR/connections.log, so that a test can tell that nobody connected, and
the socket is bound with SO_REUSEPORT, so that an impostor can start on a relay's address before
the relay is killed: the address never refuses a connection during the swap. The listen backlog is large so that a
SIGSTOPped sink (the "hung" failure: the kernel still completes TCP handshakes, nobody greets)
keeps accepting connections rather than starting to drop SYNs, which would be a blackhole.
"""

import argparse
import asyncio
import os
import signal
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP


class Store:
    def __init__(self, directory):
        self.dir = directory
        self.msgdir = os.path.join(directory, "messages")
        os.makedirs(self.msgdir, exist_ok=True)
        # Continue numbering after a restart (the "killed" run starts a new process).
        self.seq = len(os.listdir(self.msgdir))
        self.log = open(os.path.join(directory, "received.log"), "a", buffering=1)

    async def handle_DATA(self, server, session, envelope):
        self.seq += 1
        data = envelope.original_content or b""
        path = os.path.join(self.msgdir, "%06d.eml" % self.seq)
        with open(path, "wb") as f:
            f.write(data)
        tag = "-"
        for line in data.split(b"\r\n\r\n", 1)[0].splitlines():
            if line.lower().startswith(b"x-e2e-tag:"):
                tag = line.split(b":", 1)[1].strip().decode("ascii", "replace")
                break
        peer = session.peer[0] if session.peer else "?"
        self.log.write("%.6f %s %s\n" % (time.time(), tag, peer))
        self.log.flush()
        return "250 2.0.0 stored as %06d" % self.seq


class LoggedSMTP(SMTP):
    """An SMTP session that logs its peer as the connection is made."""

    def __init__(self, conn_log, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conn_log = conn_log

    def connection_made(self, transport):
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self.conn_log.write("%.6f %s\n" % (time.time(), peer[0] if peer else "?"))
        self.conn_log.flush()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True, help="ADDRESS:PORT")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--name", required=True, help="host name announced in the greeting")
    ap.add_argument("--tls-cert", help="PEM certificate: offer STARTTLS with it")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    store = Store(args.dir)
    loop = asyncio.get_running_loop()
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        conn_log = open(os.path.join(args.dir, "connections.log"), "a", buffering=1)

        def factory():
            return LoggedSMTP(conn_log, store, hostname=args.name, ident="e2e-sink", timeout=30, tls_context=ctx)

    else:

        def factory():
            return SMTP(store, hostname=args.name, ident="e2e-sink", timeout=30)

    server = await loop.create_server(
        factory,
        host=host,
        port=int(port),
        backlog=4096,
        reuse_address=True,
        reuse_port=bool(args.tls_cert),
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with open(os.path.join(args.dir, "ready"), "w") as f:
        f.write("%d\n" % os.getpid())
    await stop.wait()
    server.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
