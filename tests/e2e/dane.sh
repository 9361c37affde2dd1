#!/usr/bin/env bash
# dane.sh: DANE (RFC 7672) end to end: real senders that authenticate the relay they hand mail to
# with the TLSA records smarthostd serves signed, and an impostor at a relay's address.
#
# WHAT IT CHECKS
#   Four relays (the SMTP sinks of lib.sh, offering STARTTLS), each with its own key made by
#   openssl at run time; oxford's are pinned in smarthostd's config with `tls_key` (their
#   certificate files), cambridge's with `tlsa = ["3 1 1 <hex>"]`. smarthostd signs ([dnssec], a
#   key from `smarthostd dnssec keygen`); unbound validates with the trust anchor `smarthostd
#   dnssec ds` prints; the MTA's resolv.conf has `options trust-ad`, so that glibc passes on the
#   AD bit the MTAs need to use DANE at all.
#   1 unbound gives AD=1 and the pinned records for `_25._tcp.mail1.oxford.smarthost.internal`
#     and `_25._tcp.oxford.smarthost.internal` TLSA (the names MX-first and by-name senders ask).
#   2 Each sender delivers N messages (default 20), and every delivery went over a DANE-verified
#     connection: Postfix `relayhost = oxford.smarthost.internal` (MX) and `relayhost =
#     [oxford.smarthost.internal]` (A) with `smtp_dns_support_level = dnssec` and
#     `smtp_tls_security_level = dane`: each "status=sent" line follows, in the same smtp process,
#     "Verified TLS connection established"; Exim (manualroute /MX, `hosts_require_dane = *`,
#     `dnssec_request_domains = *`): each "=>" line carries `CV=dane`.
#   3 The impostor: a relay with another key (a certificate for the same name) starts on
#     mail1.oxford's address beside the real relay (SO_REUSEPORT), which is killed at once, so the
#     address never refuses a connection; Postfix (MX) delivers a batch across it. smarthostd must
#     leave mail1 out of the MX answer within one probe interval plus two timeouts (3 s here; the
#     time from the swap to the answer is printed), the batch is delivered (mail2 and cambridge),
#     no message reaches the impostor, and in the batch sent after the withdrawal plus SLACK no
#     sender even connects to it (its connections.log, by peer address). The real relay then
#     returns: mail1 is listed again and receives verified mail.
#
# HOW TO RUN (as root): bash tests/e2e/dane.sh     (about 20 s; installs what is missing:
#   postfix, unbound, python3-aiosmtpd, openssl; Exim is unpacked as in matrix.sh)
#   It ends with a SUMMARY line (the withdrawal time, the MTA's connections to the impostor
#   before the withdrawal, within SLACK after it, and later) and "dane: P passed, F failed"; it
#   exits non-zero on any failure.
#   Environment: SMARTHOSTD_BIN, E2E_MESSAGES (N), E2E_KEEP=1 (keep the work directory), TMPDIR.
#
# TIMING: probe interval 1 s, timeout 1 s (lib.sh's config), zone TTL 2 s, unbound's cache cap
#   1 s. SLACK (2 s) = the cache cap plus one second for a Postfix smtp process that looked the
#   MX up just before the change; connections after withdrawal + SLACK are counted.
#
# ISOLATION: as mta-failover.sh (lib.sh): namespaces, 10.99.0.0/16, an EXIT trap that stops
# every process by its id and removes the namespaces.

set -Eeuo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
HERE="$(dirname "$SELF")"
REPO="$(cd "$HERE/../.." && pwd)"
SYS_PY=/usr/bin/python3
SMARTHOSTD_BIN="${SMARTHOSTD_BIN:-$REPO/target/release/smarthostd}"
MODE=dane
N="${E2E_MESSAGES:-20}"
export E2E_DELIVERY_TIMEOUT="${E2E_DELIVERY_TIMEOUT:-60}"
SLACK=2
WITHDRAW_LIMIT=3   # probe interval + two timeouts

# shellcheck source=lib.sh
. "$HERE/lib.sh"

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
case "$N" in ''|*[!0-9]*|0) echo "E2E_MESSAGES must be a positive number" >&2; exit 2 ;; esac
RUN_START=$(now)
ensure_packages
ensure_unpacked_mtas
[ -x "$SMARTHOSTD_BIN" ] || die "smarthostd binary not found at $SMARTHOSTD_BIN (set SMARTHOSTD_BIN)"
SMARTHOSTD_BIN="$(readlink -f "$SMARTHOSTD_BIN")"

e2e_layout "she2e$$"
SHD_DNSSEC=1
RESOLV_OPTIONS=trust-ad
PASS=0
check() { # as lib.sh's, and counts
  if [ "$1" != 0 ]; then log "ASSERTION FAILED: $2"; FAILED=$(( FAILED + 1 )); else log "ok: $2"; PASS=$(( PASS + 1 )); fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
e2e_workdir "$MODE"

# --- keys and pins ------------------------------------------------------------------------------
mkdir -p "$W/tls"
# make_cert FILE-STEM NAME: a self-signed P-256 certificate for NAME (DANE-EE ignores the rest)
make_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$2" \
    -addext "subjectAltName=DNS:$2" -keyout "$1.key" -out "$1.crt" 2>/dev/null || die "openssl req failed"
}
spki_sha256() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }
declare -A PIN=()
for h in "${!HOST_IP[@]}"; do
  make_cert "$W/tls/$h" "${h#*-}.${h%%-*}.smarthost.internal"
  SINK_TLS[$h]="$W/tls/$h.crt $W/tls/$h.key"
  PIN[$h]=$(spki_sha256 "$W/tls/$h.crt")
  case "$h" in
    oxford-*) HOST_PIN[$h]=", tls_key = \"$W/tls/$h.crt\"" ;;
    *) HOST_PIN[$h]=", tlsa = [\"3 1 1 ${PIN[$h]}\"]" ;;
  esac
done
make_cert "$W/tls/impostor" mail1.oxford.smarthost.internal

setup_network
start_sinks
start_smarthostd 1
start_unbound

# --- 1: the TLSA records, validated -------------------------------------------------------------
tlsa_via_unbound() { ip netns exec "$NS_MTA" dig +short +time=1 +tries=1 @"$IP_UNBOUND" "$1" TLSA 2>/dev/null | tr -d ' ' | tr 'A-F' 'a-f'; }
for q in _25._tcp.mail1.oxford.smarthost.internal _25._tcp.oxford.smarthost.internal _25._tcp.mail2.cambridge.smarthost.internal; do
  st=$(ad_status "$IP_UNBOUND" "$q" TLSA)
  check "$([ "$st" = "NOERROR ad" ] && echo 0 || echo 1)" "unbound (validating) $q TLSA: $st"
done
has_pin() { grep -qx "311${PIN[$2]}" <<<"$1"; }
assert "_25._tcp.mail1.oxford TLSA is 3 1 1 of mail1.oxford's key (from its tls_key file)" -- \
  has_pin "$(tlsa_via_unbound _25._tcp.mail1.oxford.smarthost.internal)" oxford-mail1
site_tlsa=$(tlsa_via_unbound _25._tcp.oxford.smarthost.internal)
assert "_25._tcp.oxford TLSA holds oxford's first relay's key (for senders that ask the site's A)" -- \
  has_pin "$site_tlsa" oxford-mail1
assert "_25._tcp.oxford TLSA holds oxford's second relay's key" -- has_pin "$site_tlsa" oxford-mail2
assert "_25._tcp.mail2.cambridge TLSA is its pinned tlsa record" -- \
  has_pin "$(tlsa_via_unbound _25._tcp.mail2.cambridge.smarthost.internal)" cambridge-mail2

# --- 2: senders ---------------------------------------------------------------------------------
SMTP_TLS_LEVEL=dane
POSTFIX_EXTRA=("smtp_dns_support_level = dnssec" "smtp_tls_loglevel = 1")

# use_postfix NAME RELAYHOST: a fresh Postfix instance in $W/NAME
use_postfix() {
  PFX="$W/$1"; PFX_ETC="$PFX/etc"; MAILLOG="$PFX/maillog"
  RELAYHOST="$2" start_postfix
}

# postfix_verified: "SENT VERIFIED OTHER": status=sent lines, and how many of them follow a
# "Verified TLS connection established" line of the same smtp process (OTHER: any other TLS line)
postfix_verified() {
  awk '
    match($0, /postfix\/smtp\[[0-9]+\]/) { pid = substr($0, RSTART, RLENGTH) }
    / TLS connection established to / { tls[pid] = ($0 ~ / Verified TLS connection established/) ? "v" : "o" }
    / status=sent / { sent++; if (tls[pid] == "v") v++; else o++; delete tls[pid] }
    END { printf "%d %d %d\n", sent, v, o }' "$MAILLOG"
}

# postfix_cell LABEL PHASE: N messages, every one delivered over a verified connection
postfix_cell() {
  local label="$1" phase="$2" sent v o
  send_batch "$phase" 1 "$N"
  assert "$label: $N messages delivered" -- wait_delivered "$phase" "$N"
  read -r sent v o < <(postfix_verified)
  check "$([ "$sent" = "$N" ] && [ "$v" = "$N" ] && [ "$o" = 0 ] && echo 0 || echo 1)" \
    "$label: $v of $sent deliveries over \"Verified TLS connection established\" ($o otherwise)"
  log "  e.g. $(grep -m1 'Verified TLS connection established' "$MAILLOG" | sed "s|^.*postfix/|postfix/|")"
}

use_postfix postfix-bracketed "[oxford.smarthost.internal]"
postfix_cell "Postfix relayhost = [oxford.smarthost.internal]" br
mta_stop

EX="$W/exim"
start_exim_dane() {
  # DANE: the host lookups with DO (the resolver's AD decides), and no delivery without DANE
  start_exim_daemon "oxford.smarthost.internal/MX" "+millisec +tls_certificate_verified +tls_peerdn" \
    "$(printf '  dnssec_request_domains = *\n  hosts_require_dane = *')"
}
exim_send() {
  ip netns exec "$NS_MTA" bash -c '
    set -e
    for i in $(seq "$3" "$4"); do
      tag=$(printf "%s-%05d" "$2" "$i")
      printf "From: sender@mta.e2e.test\nTo: rcpt@dest.e2e.test\nSubject: e2e %s\nX-E2E-Tag: %s\n\nmessage %s\n" \
        "$tag" "$tag" "$tag" | "$5" -C "$1" -odb -f sender@mta.e2e.test -- rcpt@dest.e2e.test
    done' send "$EX/exim.conf" "$1" "$2" "$3" "$EXIM"
}

start_exim_dane
exim_send ex 1 "$N"
exim_delivered() (
  queue_empty() { [ "$("$EXIM" -C "$EX/exim.conf" -bpc 2>/dev/null)" = 0 ]; }
  show_queue() { "$EXIM" -C "$EX/exim.conf" -bp 2>&1 | tail -n 10; tail -n 20 "$EX/log/mainlog"; }
  wait_delivered ex "$N"
)
assert "Exim hosts_require_dane: $N messages delivered" -- exim_delivered
ex_sent=$(grep -c ' => ' "$EX/log/mainlog" || true)
ex_dane=$(grep ' => ' "$EX/log/mainlog" | grep -c ' CV=dane' || true)
check "$([ "$ex_sent" = "$N" ] && [ "$ex_dane" = "$N" ] && echo 0 || echo 1)" \
  "Exim: $ex_dane of $ex_sent deliveries logged CV=dane"
log "  e.g. $(grep -m1 ' => .* CV=dane' "$EX/log/mainlog" || true)"
stop_pid "${EXTRA_PID[exim]}" exim; unset 'EXTRA_PID[exim]'

use_postfix postfix-mx oxford.smarthost.internal
postfix_cell "Postfix relayhost = oxford.smarthost.internal" mx

# --- 3: the impostor ----------------------------------------------------------------------------
no_mail1() { [ -n "$1" ] && ! grep -q 'mail1\.oxford\.smarthost\.internal\.$' <<<"$1"; }
IMP=oxford-mail1
# The impostor: lib.sh's sink, its own directory (site "impostor"), another key, the same address,
# listening beside the real relay (SO_REUSEPORT) until the real relay is killed right after: the
# address changes hands without ever refusing a connection, so only the key can give it away.
HOST_NS[impostor-mail1]=$NS_OX HOST_IP[impostor-mail1]=${HOST_IP[$IMP]}
SINK_TLS[impostor-mail1]="$W/tls/impostor.crt $W/tls/impostor.key"
start_sink impostor-mail1
T_SWAP=$(date -r "$SINKS/impostor-mail1/ready" +%s.%N)   # the impostor listens
kill -KILL "${SINK_PID[$IMP]}"; wait "${SINK_PID[$IMP]}" 2>/dev/null || true
T_KILL=$(now)
unset "SINK_PID[$IMP]"
send_batch imp 1 "$N" &
SEND_PID=$!
T_WD=$(wait_answer no_mail1 "$IP_SHD" "$CHANGE_TIMEOUT") || die "smarthostd never withdrew the impostor's address"
wait "$SEND_PID"
D_SWAP=$(calc "$T_WD - $T_SWAP"); D_KILL=$(calc "$T_WD - $T_KILL")
log "withdrawn from the MX answer $D_SWAP s after the impostor listened ($D_KILL s after the real relay was killed)"
WD_LINE=$(grep -m1 'host=mail1 address=10.99.1.11 from="up" to="down"' "$W/smarthostd.log" || true)
sed 's/^/    /' <<<"$WD_LINE"
assert "withdrawn within one probe interval plus two timeouts ($D_SWAP s <= $WITHDRAW_LIMIT s)" -- \
  awk -v d="$D_SWAP" -v l="$WITHDRAW_LIMIT" 'BEGIN { exit !(d <= l) }'
assert "withdrawn for its key, not for a failed connection" -- \
  grep -q 'reason=certificate matches none of its TLSA records: a DANE sender would refuse it' <<<"$WD_LINE"
assert "the batch sent across the swap: $N messages delivered" -- wait_delivered imp "$N"
sleep_until "$(calc "$T_WD + $SLACK")"
T_AFTER=$(now)
send_batch late 1 "$N"
assert "the batch after the withdrawal: $N messages delivered" -- wait_delivered late "$N"
imp_mail=$(wc -l < "$SINKS/impostor-mail1/received.log" 2>/dev/null || echo 0)
check "$([ "$imp_mail" = 0 ] && echo 0 || echo 1)" "no message reached the impostor ($imp_mail stored)"
conns() { # conns PEER FROM TO: the impostor's connections from PEER in [FROM, TO)
  awk -v p="$1" -v a="$2" -v b="$3" '$2 == p && $1 >= a && $1 < b { n++ } END { print n + 0 }' "$SINKS/impostor-mail1/connections.log"
}
c_before=$(conns "$IP_MTA" 0 "$T_WD"); c_slack=$(conns "$IP_MTA" "$T_WD" "$(calc "$T_WD + $SLACK")")
c_after=$(conns "$IP_MTA" "$(calc "$T_WD + $SLACK")" 1e12); c_probe=$(conns "$IP_SHD" 0 1e12)
log "the MTA's connections to the impostor: $c_before before the withdrawal (refused by DANE), $c_slack within the slack, $c_after after; smarthostd's probes: $c_probe"
check "$([ "$c_after" = 0 ] && echo 0 || echo 1)" "after the withdrawal (+ ${SLACK} s) no sender connected to the impostor ($c_after connections)"
log "Postfix refusing the impostor before the withdrawal (${c_before} connections; the first):"
grep -m1 'server certificate verification failed for mail1.oxford.smarthost.internal' "$MAILLOG" \
  | sed "s|^.*postfix/|    postfix/|" || true

# --- the real relay returns ----------------------------------------------------------------------
stop_pid "${SINK_PID[impostor-mail1]}" impostor; unset 'SINK_PID[impostor-mail1]'
T_BACK=$(now)
start_sink "$IMP"
T_RE=$(wait_answer is_full "$IP_SHD" "$CHANGE_TIMEOUT") || die "smarthostd never listed mail1.oxford again"
log "mail1.oxford listed again $(calc "$T_RE - $T_BACK") s after its return"
sleep_until "$(calc "$T_RE + $SLACK")"
before=$(postfix_verified)
send_batch back 1 "$N"
assert "after the return: $N messages delivered" -- wait_delivered back "$N"
phase_counts back
check "$([ "${C[oxford-mail1]}" -gt 0 ] && echo 0 || echo 1)" "the returned relay receives mail again (${C[oxford-mail1]} messages)"
read -r sent v o < <(postfix_verified)
read -r sent0 v0 _ <<<"$before"
check "$([ $(( v - v0 )) = "$N" ] && [ $(( sent - sent0 )) = "$N" ] && echo 0 || echo 1)" \
  "after the return: $(( v - v0 )) of $(( sent - sent0 )) deliveries verified"

SECS=$(calc "$(now) - $RUN_START")
echo "SUMMARY dane: withdrawn ${D_SWAP}s after the impostor took the address; MTA connections to the impostor before/slack/after: $c_before/$c_slack/$c_after; ${SECS}s"
echo "dane: $PASS passed, $FAILED failed"
[ "$FAILED" = 0 ]
