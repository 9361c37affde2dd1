#!/bin/bash
# Installs what the scripts in bench/ need, from Debian 12's archive, without starting any
# service: gdnsd, Knot, NSD (the peers of bench/peers.py), dnsperf (load), python3-dnspython
# (queries), python3-aiosmtpd (the e2e sinks), util-linux (taskset), gcc (the floor and the C
# relays are compiled at run time), and PowerDNS with its bind backend (the pdns row; NO_PDNS=1
# skips it).  Measures nothing.
#
# How to run (as root, once; idempotent: installs only what is missing)
#   bench/setup.sh
#   NO_PDNS=1 bench/setup.sh               # without PowerDNS
#   WITH_HICKORY=1 bench/setup.sh          # also builds hickory-dns 0.26.3 from crates.io into
#                                          # /usr/local/bin (cargo install at nice 10; slow)
# The packages' own services must not start (they would take port 53 and run outside the
# benchmarks): an existing /usr/sbin/policy-rc.d that denies them is kept as it is; one that
# allows them makes this script stop; without one, a temporary one denies them during the
# install and is removed afterwards.  Nothing else is changed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
PKGS="gdnsd knot nsd dnsperf python3-dnspython python3-aiosmtpd util-linux gcc libc6-dev"
[ "${NO_PDNS:-0}" = 1 ] || PKGS="$PKGS pdns-server pdns-backend-bind"
POLICY=/usr/sbin/policy-rc.d

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  made_policy=0
  if [ -e "$POLICY" ]; then
    rc=0
    "$POLICY" gdnsd start >/dev/null 2>&1 || rc=$?
    if [ "$rc" != 101 ]; then
      echo "$POLICY allows services to start (exit $rc for 'gdnsd start', 101 denies):" >&2
      echo "installing would start gdnsd/knot/nsd/pdns on port 53; fix the policy first" >&2
      exit 1
    fi
    echo "$POLICY denies service starts: kept" >&2
  else
    trap 'rm -f "$POLICY"' EXIT
    printf '#!/bin/sh\n# bench/setup.sh: no service starts during the install\nexit 101\n' > "$POLICY"
    chmod 755 "$POLICY"
    made_policy=1
  fi
  echo "installing:$missing" >&2
  apt-get update -qq
  apt-get install -y --no-install-recommends $missing
  if [ "$made_policy" = 1 ]; then rm -f "$POLICY"; trap - EXIT; fi
fi

if [ "${WITH_HICKORY:-0}" = 1 ] && ! command -v hickory-dns >/dev/null; then
  nice -n 10 cargo install hickory-dns --version 0.26.3 --locked --root /usr/local
fi

for p in $PKGS; do
  printf '%-20s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p")"
done
command -v hickory-dns >/dev/null && hickory-dns --version || echo "hickory-dns: not installed (optional)"
