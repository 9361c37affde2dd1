#!/usr/bin/env bash
# secondaries.sh: smarthostd as the hidden primary of real secondaries, Knot and BIND, with TSIG.
#
# WHAT IT CHECKS
#   smarthostd (release build) serves smarthost.internal on 127.0.0.1 with [transfer] (one
#   hmac-sha256 key made by tsig-keygen, allow 127.0.0.1/32, NOTIFY to both secondaries);
#   knotd (127.0.0.2) and named (127.0.0.1, its own port) are its secondaries, each with the key. The relays
#   are fake SMTP servers (python3) the script kills and restarts.
#   1 Both secondaries take the zone (their SOA serial is smarthostd's).
#   2 Withdrawal through the secondaries, TRIALS times (default 20): oxford's mail1 is killed;
#     each of smarthostd, Knot and BIND is asked oxford's MX until mail1 is gone from it; the
#     delay of each secondary after smarthostd's own withdrawal is measured. The median and the
#     worst are printed; the worst must be under 2 s. mail1 then comes back everywhere. The
#     secondaries ask IXFR and get differences (RFC 1995): the log shows incremental transfers.
#   3 A restart of smarthostd: the serial after it is above the serial before, and both
#     secondaries follow.
#   4 Refusals, with kdig/dig AXFR: no key (REFUSED), a wrong secret (NOTAUTH, BADSIG), an
#     unknown key (NOTAUTH, BADKEY), a valid key from 127.0.0.9, outside allow (REFUSED); each
#     is a "zone transfer refused" line in smarthostd's log, and the secret is nowhere in it.
#   5 1,000 relays: a reload adds a site of 1,000 relays; both secondaries then answer for the
#     last one, and a signed AXFR counts its records.
#
# HOW TO RUN (no root needed; each server runs as the current user on 127.0.0.x high ports,
#   with a temporary folder of its own, and is stopped by its PID at the end):
#   cargo build --release && bash tests/e2e/secondaries.sh     (about a minute and a half)
#   Environment: SMARTHOSTD_BIN, TRIALS, SPACING (seconds between trials, 0), E2E_KEEP=1 (keep the work directory), TMPDIR.
#   Needs knotd, named, tsig-keygen, kdig, dig and python3: as root it installs what is
#   missing (knot, bind9, bind9-utils, knot-dnsutils, dnsutils). It ends with
#   "secondaries: P passed, F failed" and exits non-zero on any failure.

# Not -e: every check reports its own result (check $?); fatal steps call die.
set -Euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
HERE="$(dirname "$SELF")"
REPO="$(cd "$HERE/../.." && pwd)"
SMARTHOSTD_BIN="${SMARTHOSTD_BIN:-$REPO/target/release/smarthostd}"
TRIALS="${TRIALS:-20}"
# Seconds between a relay's return everywhere and the next kill: 0 puts each withdrawal within
# NOTIFY's 1 s spacing after the return (the worst case); 1.5 measures a change alone.
SPACING="${SPACING:-0}"
ZONE=smarthost.internal

log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%3N)" "$*"; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

missing=()
command -v knotd >/dev/null || [ -x /usr/sbin/knotd ] || missing+=(knot)
command -v named >/dev/null || [ -x /usr/sbin/named ] || missing+=(bind9)
command -v tsig-keygen >/dev/null || [ -x /usr/sbin/tsig-keygen ] || missing+=(bind9-utils)
command -v kdig >/dev/null || missing+=(knot-dnsutils)
command -v dig >/dev/null || missing+=(dnsutils)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing: ${missing[*]} (run as root to install them)"
  log "installing missing packages: ${missing[*]}"
  # No service may start from the install: policy-rc.d says no.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made_policy=1
  fi
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install failed"
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
PATH="$PATH:/usr/sbin"
[ -x "$SMARTHOSTD_BIN" ] || die "smarthostd binary not found at $SMARTHOSTD_BIN (set SMARTHOSTD_BIN)"

W="$(mktemp -d "${TMPDIR:-/tmp}/smarthost-e2e-secondaries.XXXXXX")"
declare -A PIDS=()   # name -> pid of everything started here
PASS=0 FAILED=0
check() { if [ "$1" != 0 ]; then log "ASSERTION FAILED: $2"; FAILED=$(( FAILED + 1 )); else log "ok: $2"; PASS=$(( PASS + 1 )); fi; }

stop() { # stop NAME: TERM, wait up to 10 s, then KILL
  local pid="${PIDS[$1]:-}" i
  [ -n "$pid" ] || return 0
  unset "PIDS[$1]"
  kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local name
  for name in "${!PIDS[@]}"; do stop "$name"; done
  if [ "$FAILED" != 0 ]; then
    log "smarthostd log (tail):"; tail -n 30 "$W/smarthostd.log" 2>/dev/null || true
    log "knot log (tail):"; tail -n 20 "$W/knot.log" 2>/dev/null || true
    log "named log (tail):"; tail -n 20 "$W/named.log" 2>/dev/null || true
  fi
  if [ "${E2E_KEEP:-0}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT

free_port() { # free_port IP: a TCP and UDP port free on IP now
  python3 -c 'import socket,sys
for _ in range(50):
    t=socket.socket(); t.bind((sys.argv[1],0)); p=t.getsockname()[1]
    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
    try: u.bind((sys.argv[1],p))
    except OSError: continue
    print(p); break' "$1"
}

# named listens only on addresses an interface has (lo: 127.0.0.1); knotd binds any.
SHD=127.0.0.1 KNOT=127.0.0.2 BIND=127.0.0.1 OUTSIDE=127.0.0.9
SHD_PORT=$(free_port $SHD) KNOT_PORT=$(free_port $KNOT) BIND_PORT=$(free_port $BIND)
ADMIN_PORT=$(free_port $SHD)
declare -A RELAY_IP=([oxford-mail1]=127.0.1.11 [oxford-mail2]=127.0.1.12 [cambridge-mail1]=127.0.2.21)
RELAY_PORT=$(free_port 127.0.1.11)

# ---------------------------------------------------------------------------------------------
# Fake relays: a greeting, 250 to anything, 221 to QUIT; killed with SIGKILL to vanish.
# ---------------------------------------------------------------------------------------------
cat > "$W/relay.py" <<'EOF'
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
def serve(c):
    try:
        c.sendall(b"220 relay ESMTP\r\n")
        for line in c.makefile("rb"):
            if line[:4].upper() == b"QUIT":
                c.sendall(b"221 bye\r\n"); break
            c.sendall(b"250 ok\r\n")
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
relay_start() { python3 "$W/relay.py" "${RELAY_IP[$1]}" "$RELAY_PORT" & PIDS[relay-$1]=$!; }
relay_kill() { local pid="${PIDS[relay-$1]}"; unset "PIDS[relay-$1]"; kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; }
for r in "${!RELAY_IP[@]}"; do relay_start "$r"; done

# ---------------------------------------------------------------------------------------------
# smarthostd
# ---------------------------------------------------------------------------------------------
KEYLINE="$(tsig-keygen -a hmac-sha256 xfr-key)"
SECRET="$(sed -n 's/.*secret "\(.*\)";.*/\1/p' <<<"$KEYLINE")"
[ -n "$SECRET" ] || die "tsig-keygen printed no secret"
mkdir -p "$W/shd"
cat > "$W/shd/$ZONE.zone" <<EOF
\$ORIGIN $ZONE.
\$TTL 60
@ IN SOA ns1 hostmaster ( 1 60 10 86400 5 )
@ IN NS ns1
ns1 IN A $SHD
EOF
host() { printf '{ name = "%s", addresses = ["%s"], port = %s }' "$1" "${RELAY_IP[$2]}" "$RELAY_PORT"; }
write_config() { # write_config EXTRA_TABLES
  cat > "$W/shd/smarthost.toml" <<EOF
[server]
listen = ["$SHD:$SHD_PORT"]
admin = "$SHD:$ADMIN_PORT"
[zone]
origin = "$ZONE"
file = "$ZONE.zone"
ttl = "5s"
[probe]
interval = "200ms"
timeout = "1s"
rise = 2
fall = 2
[sites.oxford]
hosts = [$(host mail1 oxford-mail1), $(host mail2 oxford-mail2)]
[sites.cambridge]
hosts = [$(host mail1 cambridge-mail1)]
$1
[transfer]
allow = ["127.0.0.1/32"]
notify = ["$KNOT:$KNOT_PORT", "$BIND:$BIND_PORT"]
[[transfer.tsig]]
name = "xfr-key"
algorithm = "hmac-sha256"
secret = "$SECRET"
EOF
}
write_config ""
"$SMARTHOSTD_BIN" check-config "$W/shd/smarthost.toml" >/dev/null || die "check-config"
shd_start() {
  "$SMARTHOSTD_BIN" serve --config "$W/shd/smarthost.toml" >>"$W/smarthostd.log" 2>&1 & PIDS[smarthostd]=$!
}
q() { # q IP PORT NAME TYPE: the answer, short
  dig +short +norec +tries=1 +time=1 -p "$2" "@$1" "$3" "$4" 2>/dev/null || true
}
serial_at() { q "$1" "$2" "$ZONE" SOA | awk '{ print $3 }'; }
wait_for() { # wait_for SECONDS COMMAND...: polls every 50 ms until COMMAND succeeds
  local until; until=$(calc "$(now) + $1")
  while ! "${@:2}"; do
    awk -v n="$(now)" -v u="$until" 'BEGIN { exit !(n > u) }' && return 1
    sleep 0.05
  done
}
shd_start
same_serial() { local s; s=$(serial_at $SHD "$SHD_PORT"); [ -n "$s" ] && [ "$(serial_at "$1" "$2")" = "$s" ]; }
wait_for 15 bash -c "dig +short -p $SHD_PORT @$SHD $ZONE SOA | grep -q ." || die "smarthostd does not answer"

# ---------------------------------------------------------------------------------------------
# Knot and BIND secondaries
# ---------------------------------------------------------------------------------------------
mkdir -p "$W/knot/db" "$W/bind"
cat > "$W/knot/knot.conf" <<EOF
server:
    listen: $KNOT@$KNOT_PORT
    rundir: "$W/knot"
log:
  - target: stderr
    any: info
database:
    storage: "$W/knot/db"
key:
  - id: xfr-key
    algorithm: hmac-sha256
    secret: $SECRET
remote:
  - id: smarthostd
    address: $SHD@$SHD_PORT
    key: xfr-key
acl:
  - id: notify-from-smarthostd
    address: $SHD
    key: xfr-key
    action: notify
template:
  - id: default
    storage: "$W/knot"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
zone:
  - domain: $ZONE
    master: smarthostd
    acl: notify-from-smarthostd
EOF
knotd -c "$W/knot/knot.conf" >"$W/knot.log" 2>&1 & PIDS[knotd]=$!
cat > "$W/bind/named.conf" <<EOF
options {
    directory "$W/bind";
    pid-file "$W/bind/named.pid";
    session-keyfile "$W/bind/session.key";
    listen-on port $BIND_PORT { $BIND; };
    listen-on-v6 { none; };
    recursion no;
    notify no;
    dnssec-validation no;
};
controls { };
key "xfr-key" { algorithm hmac-sha256; secret "$SECRET"; };
zone "$ZONE" {
    type secondary;
    primaries port $SHD_PORT { $SHD key "xfr-key"; };
    file "$W/bind/$ZONE.db";
};
EOF
named -g -c "$W/bind/named.conf" >"$W/named.log" 2>&1 & PIDS[named]=$!

wait_for 20 same_serial $KNOT "$KNOT_PORT"; check $? "Knot took the zone (serial $(serial_at $KNOT "$KNOT_PORT"))"
wait_for 20 same_serial $BIND "$BIND_PORT"; check $? "BIND took the zone (serial $(serial_at $BIND "$BIND_PORT"))"

# ---------------------------------------------------------------------------------------------
# 2 Withdrawal through the secondaries
# ---------------------------------------------------------------------------------------------
has_mail1() { q "$1" "$2" "oxford.$ZONE" MX | grep -q "mail1.oxford"; }
all_have_mail1() { has_mail1 $SHD "$SHD_PORT" && has_mail1 $KNOT "$KNOT_PORT" && has_mail1 $BIND "$BIND_PORT"; }
wait_for 15 all_have_mail1 || die "mail1 is not in every answer to begin with"
DELAYS_KNOT=() DELAYS_BIND=()
for ((t = 1; t <= TRIALS; t++)); do
  relay_kill oxford-mail1
  t_shd="" t_knot="" t_bind="" deadline=$(calc "$(now) + 20")
  while [ -z "$t_shd" ] || [ -z "$t_knot" ] || [ -z "$t_bind" ]; do
    [ -z "$t_shd" ] && ! has_mail1 $SHD "$SHD_PORT" && t_shd=$(now)
    [ -z "$t_knot" ] && ! has_mail1 $KNOT "$KNOT_PORT" && t_knot=$(now)
    [ -z "$t_bind" ] && ! has_mail1 $BIND "$BIND_PORT" && t_bind=$(now)
    awk -v n="$(now)" -v u="$deadline" 'BEGIN { exit !(n > u) }' && break
  done
  [ -n "$t_shd" ] && [ -n "$t_knot" ] && [ -n "$t_bind" ] || { check 1 "trial $t: mail1 withdrawn everywhere within 20 s"; break; }
  d_knot=$(calc "$t_knot - $t_shd"); d_bind=$(calc "$t_bind - $t_shd")
  DELAYS_KNOT+=("$d_knot"); DELAYS_BIND+=("$d_bind")
  log "trial $t: withdrawn by smarthostd, then Knot +${d_knot}s, BIND +${d_bind}s"
  relay_start oxford-mail1
  wait_for 15 all_have_mail1 || { check 1 "trial $t: mail1 back everywhere"; break; }
  sleep "$SPACING"
done
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "median %.3f s, worst %.3f s over %d trials", m, v[NR], NR }'; }
worst() { printf '%s\n' "$@" | sort -g | tail -n 1; }
if [ ${#DELAYS_KNOT[@]} = "$TRIALS" ]; then
  log "SUMMARY Knot after smarthostd: $(stats "${DELAYS_KNOT[@]}")"
  log "SUMMARY BIND after smarthostd: $(stats "${DELAYS_BIND[@]}")"
  awk -v w="$(worst "${DELAYS_KNOT[@]}")" 'BEGIN { exit !(w < 2) }'; check $? "Knot's worst withdrawal delay under 2 s"
  awk -v w="$(worst "${DELAYS_BIND[@]}")" 'BEGIN { exit !(w < 2) }'; check $? "BIND's worst withdrawal delay under 2 s"
fi

n_incr=$(grep -c 'kind="incremental"' "$W/smarthostd.log" || true)
[ "$n_incr" -gt 0 ]; check $? "the secondaries took differences by IXFR ($n_incr incremental transfers)"

# ---------------------------------------------------------------------------------------------
# 3 A restart keeps the serial rising; the secondaries follow
# ---------------------------------------------------------------------------------------------
before=$(serial_at $SHD "$SHD_PORT")
stop smarthostd
shd_start
wait_for 15 bash -c "dig +short -p $SHD_PORT @$SHD $ZONE SOA | grep -q ." || die "smarthostd does not answer after the restart"
# The first probe round publishes a generation: wait for its serial.
wait_for 10 bash -c "[ \"\$(dig +short -p $SHD_PORT @$SHD $ZONE SOA | awk '{print \$3}')\" != $before ]" || true
relay_kill oxford-mail2
wait_for 10 bash -c "! dig +short -p $SHD_PORT @$SHD oxford.$ZONE MX | grep -q mail2.oxford" || true
after=$(serial_at $SHD "$SHD_PORT")
log "SUMMARY serial before the restart $before, after it $after"
[ -n "$after" ] && [ "$after" -gt "$before" ]; check $? "the serial after a restart ($after) is above the one before ($before)"
wait_for 10 same_serial $KNOT "$KNOT_PORT"; check $? "Knot follows after the restart ($(serial_at $KNOT "$KNOT_PORT"))"
wait_for 10 same_serial $BIND "$BIND_PORT"; check $? "BIND follows after the restart ($(serial_at $BIND "$BIND_PORT"))"
relay_start oxford-mail2

# ---------------------------------------------------------------------------------------------
# 4 Refusals
# ---------------------------------------------------------------------------------------------
axfr() { kdig +retry=0 +timeout=3 -p "$SHD_PORT" "@$SHD" "$@" "$ZONE" AXFR 2>&1 || true; }
out=$(axfr); grep -q "error 'REFUSED'" <<<"$out"; check $? "AXFR without a key: REFUSED"
out=$(axfr -y "hmac-sha256:xfr-key:$(head -c 32 /dev/urandom | base64)"); grep -q "error 'BADSIG'" <<<"$out"; check $? "AXFR with a wrong secret: NOTAUTH, BADSIG"
out=$(axfr -y "hmac-sha256:other-key:$SECRET"); grep -q "error 'BADKEY'" <<<"$out"; check $? "AXFR with an unknown key: NOTAUTH, BADKEY"
out=$(dig +tries=1 +time=3 -b $OUTSIDE -p "$SHD_PORT" "@$SHD" -y "hmac-sha256:xfr-key:$SECRET" "$ZONE" AXFR 2>&1 || true)
grep -q "Transfer failed" <<<"$out" && ! grep -q "IN	SOA" <<<"$out"; check $? "AXFR with the key from $OUTSIDE, outside allow: refused"
out=$(axfr -y "hmac-sha256:xfr-key:$SECRET"); records=$(grep -c "IN	" <<<"$out" || true)
[ "$records" -gt 5 ]; check $? "AXFR with the key: $records records"
for reason in "no TSIG" "bad signature" "unknown key" "not in transfer.allow"; do
  grep "zone transfer refused" "$W/smarthostd.log" | grep -q "$reason"; check $? "logged: zone transfer refused, $reason"
done
! grep -qF "$SECRET" "$W/smarthostd.log"; check $? "the secret is nowhere in smarthostd's log"

# ---------------------------------------------------------------------------------------------
# 5 1,000 relays
# ---------------------------------------------------------------------------------------------
big=$(python3 -c 'import sys
print("[sites.big]\nhosts = [" + ", ".join("{ name = \"relay%d\", addresses = [\"127.20.%d.%d\"], port = %s }" % (i, i // 250, i % 250 + 1, sys.argv[1]) for i in range(1000)) + "]")' "$RELAY_PORT")
write_config "$big"
"$SMARTHOSTD_BIN" check-config "$W/shd/smarthost.toml" >/dev/null || die "check-config of the 1,000 relays"
kill -HUP "${PIDS[smarthostd]}"
last_relay() { q "$1" "$2" "relay999.big.$ZONE" A | grep -q "127.20.3.250"; }
wait_for 20 last_relay $SHD "$SHD_PORT"; check $? "smarthostd serves the 1,000 relays after the reload"
wait_for 20 last_relay $KNOT "$KNOT_PORT"; check $? "Knot serves relay999 of 1,000"
wait_for 20 last_relay $BIND "$BIND_PORT"; check $? "BIND serves relay999 of 1,000"
out=$(axfr -y "hmac-sha256:xfr-key:$SECRET"); records=$(grep -c "IN	A	127.20" <<<"$out" || true)
log "SUMMARY 1,000-relay zone: $(grep -o 'Received.*' <<<"$out" | head -n 1)"
[ "$records" = 1000 ]; check $? "a signed AXFR holds the 1,000 relays' addresses ($records)"

log "secondaries: $PASS passed, $FAILED failed"
[ "$FAILED" = 0 ]
