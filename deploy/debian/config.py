#!/usr/bin/env python3
"""Prints the Debian package's /etc/smarthostd/smarthost.toml, made from deploy/smarthost.toml
(the one source of every key and comment they share): the production example with what the
package does differently, below, each a passage of the example and what stands in its place.
Every passage must stand in the example exactly once, so that a change there that one of them
no longer fits stops the build. build-deb.sh writes the result where Cargo.toml's assets take
it; tests/integration/package.rs loads it.

    python3 deploy/debian/config.py > smarthost.toml
"""

import pathlib
import sys

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "smarthost.toml"

# (why, the example's passage, the package's)
CHANGES = [
    (
        'the title',
        '''\
# smarthostd production example: /etc/smarthostd/smarthost.toml
''',
        '''\
# smarthostd: /etc/smarthostd/smarthost.toml, as the Debian package installs it.
''',
    ),
    (
        'what the file is for the package, and how to put it to work',
        '''\
# Three sites, each with its own outbound relays (smart hosts):
#   oxford     10.1.25.11, 10.1.25.12
#   cambridge  10.2.25.11, 10.2.25.12
#   london     10.3.25.11 and 2001:db8:3:25::11 (one dual-stack relay)
# smarthostd itself runs on 10.0.0.53 (ns1.smarthost.internal in the zone file beside this one).
# Replace the addresses with yours; every key is described in zones/smarthost.toml of the
# source tree and in deploy/GUIDE.md.
''',
        '''\
# A conffile: your changes are kept across upgrades. Out of the box it touches nothing but this
# machine: DNS on 127.0.0.1:5353, the admin API on 127.0.0.1:8053, and three example sites whose
# relays have loopback addresses (127.0.1.x), where normally nothing listens on port 25, so every
# site is answered in failsafe mode. The package does not start the service. To put it to work:
#   1. replace the sites and relays below with yours, `listen` with the address(es) your
#      resolvers forward the zone to (port 53), `probe.ehlo` with this machine's FQDN, and the
#      NS/ns1 records of smarthost.internal.zone beside this file to match `listen`;
#   2. smarthostd check-config /etc/smarthostd/smarthost.toml
#   3. systemctl enable --now smarthostd
# Later changes: check-config, then `systemctl reload smarthostd` (SIGHUP).
#
# Every key is described in /usr/share/doc/smarthostd/GUIDE.md and README.md;
# /usr/share/doc/smarthostd/examples/smarthost.toml is a production example with RFC 1918
# addresses.
''',
    ),
    (
        '(said in the header above)',
        '''\
#
# Check a change before applying it:
#   smarthostd check-config /etc/smarthostd/smarthost.toml
# then `systemctl reload smarthostd` (SIGHUP) or `smarthostd reload -c /etc/smarthostd/smarthost.toml`.
''',
        '''''',
    ),
    (
        "listen on loopback port 5353, where the package's first start touches nothing",
        '''\
# Changing `listen` needs a restart; a reload only warns.
listen = ["10.0.0.53:53"]
''',
        '''\
# Changing `listen` needs a restart; a reload only warns. Port 53 works under the systemd unit
# (CAP_NET_BIND_SERVICE); the loopback port 5353 works anywhere, which is why it ships.
listen = ["127.0.0.1:5353"]
''',
    ),
    (
        '(wording)',
        '''\
# address, localhost, and admin_hosts), so that no web page can reach it by a name of its own
# (DNS rebinding); pages cannot send it state changes either.
''',
        '''\
# address, localhost, and admin_hosts below), so that no web page can reach it by a name of its
# own (DNS rebinding); pages cannot send it state changes either.
''',
    ),
    (
        'who may act: the group smarthostd through the control socket, and the token file the postinst makes',
        '''\
# Names a browser or scraper uses besides the address and localhost (a reverse proxy's):
# admin_hosts = ["smarthostd.example.org"]
# The token is best kept out of this (world-readable) file: put
#   SMARTHOSTD_ADMIN_TOKEN=<64 hex characters>
# in /etc/smarthostd/env (mode 0600), which the systemd unit reads; or in a file of its own
# that only root and the service's group may read: admin_token_file = "admin-token". With a
# token set, drain, undrain and reload over TCP need it, from loopback too.
# admin_token = "change-me"
# The admin API on a UNIX socket, for those who may open it: no token needed. With the
# systemd unit (RuntimeDirectory=smarthostd, 0750, a dynamic user) that is root alone.
# control_socket = "/run/smarthostd/control.sock"
''',
        '''\
# Names a browser or scraper uses to reach the admin API besides its address and localhost,
# e.g. a reverse proxy's: admin_hosts = ["smarthostd.example.org"]
# Who may act (drain, undrain, reload): root and members of the group smarthostd
# (`adduser alice smarthostd`). They reach the control socket, which needs no token (its
# folder /run/smarthostd is 0750 smarthostd:smarthostd, the socket 0660), and may read the
# token file, which state changes over TCP need. Every other local user can read status and
# metrics on 127.0.0.1:8053 and change nothing. `smarthostd drain oxford/mail1` takes the socket.
control_socket = "/run/smarthostd/control.sock"
# Made at first install with 64 random hex characters, root:smarthostd 0640; read at start and
# on every reload; refused when every user may read it. Another token: write it there and reload.
admin_token_file = "/etc/smarthostd/admin-token"
''',
    ),
    (
        'the state folder the package makes',
        '''\
# are kept here across restarts. The systemd unit's StateDirectory= and the container's volume
# both create /var/lib/smarthostd.
''',
        '''\
# are kept here across restarts. The package creates /var/lib/smarthostd for the smarthostd
# user; the systemd unit's StateDirectory= keeps it so.
''',
    ),
    (
        "Oxford's relays on loopback",
        '''\
  { name = "mail1", addresses = ["10.1.25.11"] },
  { name = "mail2", addresses = ["10.1.25.12"] },
''',
        '''\
  { name = "mail1", addresses = ["127.0.1.11"] },
  { name = "mail2", addresses = ["127.0.1.12"] },
''',
    ),
    (
        '(the example command)',
        '''\
# 10.1.25.11` prints the record of the key a relay shows; compare it on the relay itself.
#   { name = "mail1", addresses = ["10.1.25.11"], tls_key = "/etc/smarthostd/relays/mail1.pem" },
''',
        '''\
# 127.0.1.11` prints the record of the key a relay shows; compare it on the relay itself.
#   { name = "mail1", addresses = ["127.0.1.11"], tls_key = "/etc/smarthostd/relays/mail1.pem" },
''',
    ),
    (
        "Cambridge's relays on loopback",
        '''\
  { name = "mail1", addresses = ["10.2.25.11"] },
  { name = "mail2", addresses = ["10.2.25.12"], port = 25 },
''',
        '''\
  { name = "mail1", addresses = ["127.0.1.21"] },
  { name = "mail2", addresses = ["127.0.1.22"], port = 25 },
''',
    ),
    (
        "London's relay on loopback",
        '''\
  # Both addresses are probed on their own; the A/AAAA records list the healthy ones.
  { name = "mail1", addresses = ["10.3.25.11", "2001:db8:3:25::11"], timeout = "2s" },
''',
        '''\
  # A dual-stack relay lists both addresses, e.g. ["10.3.25.11", "2001:db8:3:25::11"]: each is
  # probed on its own, and the A/AAAA records list the healthy ones.
  { name = "mail1", addresses = ["127.0.1.31"], timeout = "2s" },
''',
    ),
    (
        "no egress or blocklist example in the package's file",
        '''\
# The public address London's relays send from (the firewall's outside address): what the
# blocklists below are asked about. Each site can list its own.
# egress = ["198.51.100.30"]

# DNS blocklist checks of the sites' egress addresses (GUIDE.md, section 12). Mind each list's
# terms: Spamhaus refuses queries that come through public resolvers and limits free use
# (commercial users: DQS, zone = "<key>.zen.dq.spamhaus.net").
# [reputation]
# lists = [{ zone = "zen.spamhaus.org", name = "zen" }]
# resolver = ["10.0.0.10:53"]   # your own recursive resolver
# action = "warn"               # "demote": listed sites' relays behind every clean site
# hold = "1h"
''',
        '''''',
    ),
    (
        'the token file of every instance',
        '''\
# listener; each leaves its own out, so this same file serves all. Needs the same admin token
# on every instance and server.admin on an address the others reach; the token crosses the
# network in the clear unless the path is protected (WireGuard, an SSH tunnel, a TLS proxy).
''',
        '''\
# listener; each leaves its own out, so this same file serves all. Needs the same token in
# /etc/smarthostd/admin-token on every machine and server.admin on an address the others
# reach; the token crosses the network in the clear unless the path is protected (WireGuard,
# an SSH tunnel, a TLS proxy).
''',
    ),
    (
        "no [dnssec] example in the package's file",
        '''\
# Signed answers (GUIDE.md, section 13): `smarthostd dnssec keygen --config THIS_FILE` makes a
# key; `smarthostd dnssec ds --config THIS_FILE` prints the trust anchors for your resolvers.
# [dnssec]
# key_dir = "keys"              # /etc/smarthostd/keys, owned by the user smarthostd runs as
''',
        '''''',
    ),
]


def main() -> int:
    text = EXAMPLE.read_text()
    for why, example, package in CHANGES:
        found = text.count(example)
        if found != 1:
            print(
                f"config.py: the passage for {why!r} stands {found} times in {EXAMPLE}: mend it",
                file=sys.stderr,
            )
            return 1
        text = text.replace(example, package)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
