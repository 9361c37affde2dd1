#!/usr/bin/env bash
# matrix.sh: the failover proof of mta-failover.sh, in its "killed" mode, across MTAs and
# resolvers, with two smarthostd instances, and through a secondary name server.
#
# WHAT IT PROVES
#   Each cell is one run of the proof with one MTA behind one resolver (layout and sinks as in
#   mta-failover.sh, see lib.sh): N messages per phase (default 50);
#     1 baseline  all N reach oxford, none cambridge.
#     2 failover  both oxford relays are SIGKILLed; N/2 messages are sent at once, the rest once
#                 smarthostd has withdrawn them plus the cell's slack. All N reach cambridge, and
#                 after withdrawal + slack the MTA makes NO connection attempt to an oxford relay
#                 (SYN packets counted by nftables in the oxford namespace, and the MTA's own log).
#     3 failback  the relays are restarted; once the resolver lists them again N messages are
#                 sent and all reach oxford.
#   Over the run: every message stored exactly once, no bounce (MTA log, sinks), the MTA's queue
#   empty, the resolver refuses (or answers NXDOMAIN for) a name outside smarthost.internal.
#   Cells (MTA behind resolver):
#     postfix            Postfix relayhost = oxford.smarthost.internal (MX) / unbound (as today's test)
#     postfix-bracketed  Postfix relayhost = [oxford.smarthost.internal] (A only)  / unbound
#     exim-mx            Exim manualroute route_list = * oxford.smarthost.internal/MX / unbound
#     exim-byname        Exim manualroute route_list = * oxford.smarthost.internal byname (A) / unbound
#     opensmtpd          OpenSMTPD action relay host smtp://oxford.smarthost.internal (A) / unbound
#     bind               Postfix (MX) / BIND 9: zone type forward, forward only
#     kresd              Postfix (MX) / Knot Resolver: policy.STUB for the zone, REFUSE for the rest
#     pdns-recursor      Postfix (MX) / PowerDNS Recursor: forward-zones, a negative trust anchor
#     dnsmasq            Postfix (MX) / dnsmasq: --server=/smarthost.internal/..., --no-resolv
#     two-ns             Postfix (MX) / unbound stub-zone with two smarthostd instances (10.99.0.53
#                        and 10.99.0.54, same config, each its own state_dir, both in the NS set,
#                        one [cluster] with a shared token file): oxford's mail1 is drained on
#                        instance 1 alone and N messages are sent: instance 2 must have the drain
#                        when the command returns (its reply says applied), and no message may
#                        reach mail1; the undrain is made on instance 2; then
#                        instance 2 is SIGKILLed in the middle of a batch (all mail still delivered,
#                        the survivor answering alone); the oxford relays are killed while it is
#                        down; it is restarted and its first answer must already leave them out
#                        (smarthostd answers only after its first probe round); the relays come
#                        back and mail flows until unbound asks instance 2 again; then, both
#                        running, the relays are killed and restored 5 times while both instances
#                        are polled every 50 ms: their withdrawals must be at most one probe
#                        interval plus one timeout (2 s, + 0.1 s of polling) apart.
#     secondary          Postfix (MX) / unbound stub-zone to a Knot secondary ONLY: smarthostd is
#                        a hidden primary ([transfer]: allow and notify the secondary, one
#                        hmac-sha256 key made by tsig-keygen at run time); Knot (10.99.0.52, in a
#                        namespace of its own) transfers the zone with that key and takes
#                        smarthostd's signed NOTIFY; the zone's NS names the secondary alone.
#                        Besides the proof above: the secondary's withdrawal and re-listing are
#                        measured after smarthostd's (withdrawal within 2 s); unbound's config
#                        names the secondary alone, and nftables counters by source address
#                        show unbound asked the secondary and sent smarthostd nothing (nor did
#                        any source but the secondary and this script's probes from the MTA
#                        namespace); the secondary took NOTIFY and IXFRs; the secret is not in
#                        smarthostd's log.
#     unbound-dnssec     Postfix (MX) / unbound validating with the zone's trust anchor;
#     bind-dnssec        Postfix (MX) / BIND 9 forward only, dnssec-validation yes, trust-anchors;
#     kresd-dnssec       Postfix (MX) / Knot Resolver policy.FORWARD (validating), trust_anchors.add;
#     pdns-dnssec        Postfix (MX) / PowerDNS Recursor forward-zones, dnssec=validate, addTA:
#                        smarthostd signs ([dnssec], a key from `smarthostd dnssec keygen`), and
#                        the resolver is given exactly the trust anchor `smarthostd dnssec ds`
#                        prints for it. Besides the proof above: the resolver's answer has AD=1
#                        before the failover, and from the kill until 2 s after the resolver
#                        shows the withdrawal it is asked every 100 ms (DO and AD set): every
#                        answer has AD=1 and none is SERVFAIL.
#   Each cell prints one row of the table (withdrawal, resolver lag, first fallback delivery,
#   attempts after withdrawal + slack as SYN/log, the slack, re-listing, resolver lag, first
#   in-site delivery after the return, result); "all" prints the whole table at the end.
#
# HOW TO RUN (as root; CI runs "all" after mta-failover.sh)
#   bash tests/e2e/matrix.sh [-n N] [all|CELL]        (N >= 50 unless E2E_ALLOW_SMALL=1)
#   Environment: SMARTHOSTD_BIN, E2E_KEEP=1, E2E_DELIVERY_TIMEOUT, TMPDIR as for mta-failover.sh;
#     E2E_MTA_ROOT  where Exim's and OpenSMTPD's .debs are unpacked (default
#                   /var/cache/smarthost-e2e/mta-root; kept, so the download happens once)
#     E2E_INFRA_HOST_TTL  unbound's infra-host-ttl in two-ns (default 10; unbound's own is 900)
#     E2E_SPREAD_TRIALS   withdrawal-spread trials in two-ns (default 5)
#     OPENSMTPD_VERBOSE=1 smtpd -v (debug log)
#   It ends with "matrix: P passed, F failed" and exits non-zero on any failure.
#
# WHAT IT NEEDS
#   As mta-failover.sh, plus Debian's bind9, knot-resolver, pdns-recursor, dnsmasq-base, knot and
#   bind9-utils (tsig-keygen)
#   (apt-get, with service starts denied through policy-rc.d), and exim4-daemon-light and
#   opensmtpd, which conflict with postfix as packages: they are fetched with `apt-get download`
#   and unpacked with dpkg-deb -x under E2E_MTA_ROOT, their libraries installed with apt-get.
#   Exim needs the Debian-exim user (compiled in), OpenSMTPD opensmtpd and opensmtpq (and
#   smtpctl setgid opensmtpq): created if missing, as the packages' postinst scripts would.
#   Exim runs with -C (its own config, spool_directory, log_file_path, pid_file_path under the
#   work directory) as a foreground daemon (-bdf -q1s, listening on 127.0.0.1:2525 in the MTA
#   namespace only); mail is submitted with exim -odb. Running with -C a config that is not in
#   /etc/exim4/trusted_configs makes Exim log "exim user lost privilege for using -C option" to
#   its panic log when it re-executes itself as Debian-exim; that line is expected and ignored.
#   OpenSMTPD's spool (/var/spool/smtpd), socket (/var/run/smtpd.sock) and chroot
#   (/var/lib/opensmtpd/empty) are compiled in: smtpd -d runs in a mount namespace of its own
#   (unshare) in which the work directory is mounted over /var/spool, /run and a tmpfs over
#   /var/lib; mail is submitted over SMTP to 127.0.0.1:2525; its log is stamped as it is written.
#   Every MTA resolves through /etc/netns/<mta ns>/resolv.conf, i.e. the cell's resolver.
#
# ISOLATION
#   As mta-failover.sh: namespaces and addresses in 10.99.0.0/16 only, every resolver at
#   10.99.0.10 answering smarthost.internal from smarthostd (in the secondary cell: from the Knot
#   secondary, which alone talks to smarthostd, at 10.99.0.52) and nothing else (BIND from a local
#   empty root zone, so no root-server traffic is even attempted; Knot Resolver with priming and
#   the trust-anchor probes unloaded; PowerDNS Recursor refusing other names in a Lua preresolve
#   hook; dnsmasq and unbound refusing them). An EXIT trap stops every process by its id (smtpd's
#   children by parent id), deletes namespaces, /etc/netns/<mta ns> and the work directory.
#
# TIMING KNOBS AND WHY
#   smarthostd as in mta-failover.sh (ttl 2s, probe interval 1s, timeout 1s, rise/fall 2).
#   Resolvers, all capped at 1 s of caching:
#     unbound   cache-max-ttl 1, cache-max-negative-ttl 1, no prefetch, no serve-expired.
#     BIND      max-cache-ttl 1, max-ncache-ttl 1, prefetch 0, stale-answer-enable no,
#               dnssec-validation no. `forward only`: with `forward first` (BIND's default for a
#               forward zone) a failing smarthostd makes BIND iterate from the root instead,
#               i.e. send the private name to the Internet's root servers (here: to the local
#               empty root, which would answer NXDOMAIN).
#     kresd     cache.min_ttl(0) (default 5 s: a floor that would hold every 2 s answer 5 s),
#               cache.max_ttl(1); min_ttl must be lowered first (max_ttl must exceed it).
#               policy.STUB does not validate; trust_anchors.remove('.') all the same.
#     pdns      max-cache-ttl 1, max-negative-ttl 1, packetcache-ttl 1,
#               packetcache-servfail-ttl 1; addNTA("smarthost.internal") (it validates by
#               default, dnssec=process).
#     dnsmasq   --max-cache-ttl 1, --neg-ttl 1; it does not cache MX at all (A/AAAA only), so
#               an MX-first MTA sees each change at once.
#   Postfix: as mta-failover.sh (smtp_connect_timeout 2s, backoff 1-2 s, no connection cache).
#   Exim: connect_timeout 2s, command timeouts 5s; hosts_try_fastopen = : (TCP Fast Open is on
#     for every host by default; with it the connect returns before the handshake and a dead host
#     can cost the banner wait, command_timeout, instead of connect_timeout, as reported for some
#     versions; the test relays offer no Fast Open, so this is for safety); retry rule
#     `* * F,1h,1s`: a host that failed is skipped until its retry time and a message whose every
#     host failed is deferred until then, so the default rules (15 min and up) would hold mail
#     long after the outage; the daemon runs a queue every second (-q1s); hosts_max_try 5
#     (default; for an MX route Exim still tries one address of each higher MX value when the
#     limit is reached, for byname it does not).
#   OpenSMTPD (6.8, no setting for these unless said):
#     - the "relay" keeps the addresses it resolved for as long as it has mail or a session;
#       an idle session is kept `mta limit session-keepalive` seconds (default 10; 1 here) and
#       the relay itself for its next source check, 10 s;
#     - a refused connection disables that route (source -> address) for 15 s, and connections
#       on one relay are 2 s apart (conn-delay-relay); when no route is left, every message of the
#       relay fails temporarily ("Network error on destination MXs") and the scheduler retries it
#       400 s after its arrival (then 1600 s, ...: 400 s x retry^2).
#     So mail queued when the oxford relays die is not re-resolved: it waits for the relay to give
#     up (about 9 s after the kill here, up to 20 s on a loaded machine) and then 400 s. The cell
#     waits for that give-up (the TempFail line, at most 60 s) before sending the second half
#     (B = max(withdrawal + slack, give-up + 1 s)), checks
#     that the second half is delivered at cambridge at once, counts the held messages and
#     releases them with `smtpctl schedule all` (the operator's command), so the run takes
#     seconds, not minutes; the row says how many were held. Before the failback batch it waits
#     for the relay to cambridge to be let go (last delivery + keepalive + 10 s + 1 s).
#   Slack after withdrawal (the resolver's cache cap + 1 s of whole-second expiry + the MTA's
#   per-try time, 0 for refused connections + 1 s of scheduling): 3 s for every cell; OpenSMTPD:
#   until its give-up + 1 s, as above (9-20 s); secondary: 2 s more (5 s) for the secondary's
#   lag (smarthostd's NOTIFY spacing of 1 s, then Knot's SOA check and IXFR: the bound
#   secondaries.sh holds Knot and BIND to).
#   two-ns: unbound infra-host-ttl 10 s (default 900 s: after unbound has met a dead instance it
#   keeps avoiding it; measured here with the default: not asked again within 120 s of its
#   restart, while mail flowed), outgoing-interface 10.99.0.10.
#
# BUDGET
#   N = 50 per phase. The whole matrix took 171 s on 2 cores from a machine without the four
#   resolver packages and the unpacked MTAs (11 s of it installing and unpacking, the libraries
#   being present; add the download of about 15 MB on a fresh machine), and up to 261 s while
#   other builds shared the cores; the four -dnssec cells add about 50 s (all 14 cells: 234 s
#   with other builds on the cores), the secondary cell 13-16 s. resolver-checks.sh, run after it in CI, takes about 35 s,
#   dnssec.sh about 25 s.

set -Eeuo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
HERE="$(dirname "$SELF")"
REPO="$(cd "$HERE/../.." && pwd)"
SYS_PY=/usr/bin/python3   # Debian's, with python3-aiosmtpd (not a pyenv one on PATH)

ALL_CELLS=(postfix postfix-bracketed exim-mx exim-byname opensmtpd bind kresd pdns-recursor dnsmasq two-ns
           secondary unbound-dnssec bind-dnssec kresd-dnssec pdns-dnssec)
N="${E2E_MESSAGES:-50}"
CELL=all
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^$/p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
    all) CELL=all; shift ;;
    *) if printf '%s\n' "${ALL_CELLS[@]}" | grep -qx -- "$1"; then CELL="$1"; shift
       else echo "usage: $0 [-n N] [all|${ALL_CELLS[*]// /|}]" >&2; exit 2; fi ;;
  esac
done
case "$N" in ''|*[!0-9]*) echo "N must be a number, got '$N'" >&2; exit 2 ;; esac
if [ "$N" -lt 50 ] && [ "${E2E_ALLOW_SMALL:-0}" != 1 ]; then
  echo "N must be at least 50 (set E2E_ALLOW_SMALL=1 for a quick try)" >&2; exit 2
fi
if [ "$N" -lt 4 ]; then echo "N must be at least 4" >&2; exit 2; fi

SMARTHOSTD_BIN="${SMARTHOSTD_BIN:-$REPO/target/release/smarthostd}"
MODE="$CELL"

# shellcheck source=lib.sh
. "$HERE/lib.sh"

# ---------------------------------------------------------------------------------------------
# Packages: installed once (the resolvers and the MTAs' libraries with apt-get, service starts
# denied; Exim's and OpenSMTPD's binaries unpacked under MTA_ROOT), users the MTAs need.
# ---------------------------------------------------------------------------------------------
ensure_matrix_packages() {
  ensure_packages
  local missing=()
  [ -x /usr/sbin/named ] || missing+=(bind9)
  [ -x /usr/sbin/kresd ] || missing+=(knot-resolver)
  [ -x /usr/sbin/pdns_recursor ] || missing+=(pdns-recursor)
  [ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
  [ -x /usr/sbin/knotd ] || missing+=(knot)
  command -v tsig-keygen >/dev/null || [ -x /usr/sbin/tsig-keygen ] || missing+=(bind9-utils)
  if [ ${#missing[@]} -gt 0 ]; then with_policy_rc_d apt_install "${missing[@]}" || die "apt-get install failed"; fi
  ensure_unpacked_mtas
  return 0
}

# ---------------------------------------------------------------------------------------------
# The table: one row per cell, appended by each cell's run to E2E_TABLE_FILE
# ---------------------------------------------------------------------------------------------
TABLE_HEAD="cell|MTA (asks for)|resolver|withdrawn|resolver +|1st fallback delivery|attempts after wd+slack (SYN/log)|slack|re-listed|resolver +|1st in-site delivery|result"
print_table() {
  { echo "$TABLE_HEAD"; cat "$1"; } | column -t -s '|' -o ' | '
  echo "(times in seconds: withdrawn and 1st fallback delivery from the kill of the oxford relays;"
  echo " re-listed and 1st in-site delivery from their return, i.e. once the restarted relays listen, the"
  echo " batch being sent as soon as the resolver lists them; resolver + = how much later the cell's"
  echo " resolver showed the change than smarthostd)"
}

# ---------------------------------------------------------------------------------------------
# "all": each cell is its own run, in its own process (own namespaces, own trap).
# ---------------------------------------------------------------------------------------------
if [ "$CELL" = all ]; then
  [ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
  start=$(date +%s)
  ensure_matrix_packages
  log "packages ready in $(( $(date +%s) - start )) s"
  pass=0 fail=0 failed=()
  export E2E_SUMMARY_FILE E2E_TABLE_FILE
  E2E_SUMMARY_FILE="$(mktemp "${TMPDIR:-/tmp}/she2e-summary.XXXXXX")"
  E2E_TABLE_FILE="$(mktemp "${TMPDIR:-/tmp}/she2e-table.XXXXXX")"
  for c in "${ALL_CELLS[@]}"; do
    if bash "$SELF" -n "$N" "$c"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed+=("$c"); fi
  done
  echo
  cat "$E2E_SUMMARY_FILE" 2>/dev/null || true
  echo
  print_table "$E2E_TABLE_FILE"
  rm -f "$E2E_SUMMARY_FILE" "$E2E_TABLE_FILE"
  log "matrix done in $(( $(date +%s) - start )) s (packages included)${failed:+; failed: ${failed[*]}}"
  echo "matrix: $pass passed, $fail failed"
  [ "$fail" = 0 ]
  exit $?
fi

# ---------------------------------------------------------------------------------------------
# One cell
# ---------------------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
ensure_matrix_packages
[ -x "$SMARTHOSTD_BIN" ] || die "smarthostd binary not found at $SMARTHOSTD_BIN (set SMARTHOSTD_BIN)"
SMARTHOSTD_BIN="$(readlink -f "$SMARTHOSTD_BIN")"

RUN_START=$(now)
e2e_layout "she2e$$"
FAILURE=killed
case "$CELL" in
  postfix)            MTA=postfix           RES=unbound ;;
  postfix-bracketed)  MTA=postfix-bracketed RES=unbound ;;
  exim-mx)            MTA=exim-mx           RES=unbound ;;
  exim-byname)        MTA=exim-byname       RES=unbound ;;
  opensmtpd)          MTA=opensmtpd         RES=unbound ;;
  bind)               MTA=postfix           RES=bind ;;
  kresd)              MTA=postfix           RES=kresd ;;
  pdns-recursor)      MTA=postfix           RES=pdns-recursor ;;
  dnsmasq)            MTA=postfix           RES=dnsmasq ;;
  two-ns)             MTA=postfix           RES=unbound; SHD_IPS=("$IP_SHD" "$IP_SHD2") ;;
  # unbound's queries leave from its own address, so that they can be told apart (count_dns53)
  secondary)          MTA=postfix           RES=unbound; SECONDARY=1
                      UNBOUND_EXTRA="  outgoing-interface: $IP_UNBOUND" ;;
  unbound-dnssec)     MTA=postfix           RES=unbound; SHD_DNSSEC=1 ;;
  bind-dnssec)        MTA=postfix           RES=bind; SHD_DNSSEC=1 ;;
  kresd-dnssec)       MTA=postfix           RES=kresd; SHD_DNSSEC=1 ;;
  pdns-dnssec)        MTA=postfix           RES=pdns-recursor; SHD_DNSSEC=1 ;;
esac
case "$MTA" in
  postfix-bracketed|exim-byname|opensmtpd) ANSWER_QTYPE=A ;;
esac

# The longest a resolver may hand out an answer smarthostd has already changed (its cache cap,
# or the floor it will not go below), in whole seconds; see the header.
case "$RES" in
  unbound|bind|pdns-recursor|dnsmasq) RES_HOLD=1 ;;
  kresd) RES_HOLD=1 ;;
esac
# What the MTA adds on top: see the header.
case "$MTA" in
  opensmtpd) MTA_HOLD=0 ;;   # but see opensmtpd_relay_released
  *) MTA_HOLD=0 ;;
esac
# A secondary between smarthostd and the resolver adds its own lag (NOTIFY at most 1 s after the
# previous one, then an SOA check and an IXFR): 2 s, the bound secondaries.sh holds Knot to.
SEC_HOLD=0; [ "$SECONDARY" = 1 ] && SEC_HOLD=2
SLACK=$(( RES_HOLD + 1 + MTA_HOLD + 1 + SEC_HOLD ))

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

e2e_workdir "$CELL"

# ---------------------------------------------------------------------------------------------
# Resolvers, all at IP_UNBOUND (10.99.0.10) in the dns namespace, forwarding or stubbing
# smarthost.internal to smarthostd and answering nothing else from anywhere else.
# ---------------------------------------------------------------------------------------------
# BIND's DNSSEC options: with a signed zone, validation from the zone's trust anchor (no root
# key: the local root is not signed); otherwise none (.internal has no chain of trust, see
# deploy/GUIDE.md: validate-except with validation on).
bind_dnssec() {
  if [ "$SHD_DNSSEC" = 1 ]; then
    echo "  dnssec-validation yes;"
  else
    echo "  dnssec-validation no;"
  fi
}

start_bind() {
  local d="$W/bind" a fwd=""
  mkdir -p "$d"
  for a in "${SHD_IPS[@]}"; do fwd+="$a; "; done
  # A local, empty root zone: every name outside smarthost.internal is answered NXDOMAIN from
  # it, so no query ever goes to the root servers. It delegates smarthost.internal (BIND
  # forwards a zone below one it is authoritative for only where that zone delegates it).
  cat > "$d/root.db" <<ZONE
\$TTL 60
.                       IN SOA localhost. hostmaster.localhost. ( 1 3600 600 86400 60 )
.                       IN NS  localhost.
localhost.              IN A   127.0.0.1
smarthost.internal.     IN NS  ns1.smarthost.internal.
ns1.smarthost.internal. IN A   $IP_SHD
ZONE
  cat > "$d/named.conf" <<CONF
options {
  directory "$d";
  pid-file "$d/named.pid";
  session-keyfile "$d/session.key";
  managed-keys-directory "$d";
  listen-on port 53 { $IP_UNBOUND; };
  listen-on-v6 { none; };
  recursion yes;
  allow-query { 10.99.0.0/16; };
  allow-recursion { 10.99.0.0/16; };
$(bind_dnssec)
  // answers follow smarthostd within a second
  max-cache-ttl 1;
  max-ncache-ttl 1;
  stale-answer-enable no;
  stale-cache-enable no;
  prefetch 0;
  notify no;
};
controls { };
$([ "$SHD_DNSSEC" = 1 ] && trust_anchor bind)
zone "." { type primary; file "root.db"; };
zone "smarthost.internal" {
  type forward;
  forward only;   // forward first would fall back to iterating from the root (see the header)
  forwarders { $fwd};
};
CONF
  named-checkconf "$d/named.conf" || die "named-checkconf failed"
  ip netns exec "$NS_DNS" named -g -4 -c "$d/named.conf" >"$W/resolver-bind.log" 2>&1 &
  EXTRA_PID[named]=$!
  wait_resolver_up "${EXTRA_PID[named]}" named
}

# Knot Resolver's route to smarthostd: policy.STUB does not validate; with a signed zone,
# policy.FORWARD (which validates) and the zone's trust anchor.
kresd_dnssec() {
  if [ "$SHD_DNSSEC" = 1 ]; then
    trust_anchor kresd
    echo "policy.add(policy.suffix(policy.FORWARD({ $1}), { todname('smarthost.internal.') }))"
  else
    echo "policy.add(policy.suffix(policy.STUB({ $1}), { todname('smarthost.internal.') }))"
  fi
}

start_kresd() {
  local d="$W/kresd" a stub=""
  mkdir -p "$d"
  for a in "${SHD_IPS[@]}"; do stub+="'$a', "; done
  cat > "$d/config.lua" <<CONF
net.ipv6 = false
net.listen('$IP_UNBOUND', 53, { kind = 'dns' })
cache.open(10 * MB, 'lmdb://$d/cache')
-- answers follow smarthostd within seconds: lower the floor (default 5 s), then cap at 1 s
cache.min_ttl(${KRESD_MIN_TTL:-0})
cache.max_ttl(1)
-- no root trust anchor (no chain of trust for .internal), no root priming or time-skew probes
trust_anchors.remove('.')
for _, m in ipairs({'priming', 'detect_time_skew', 'detect_time_jump', 'ta_signal_query', 'ta_sentinel', 'ta_update'}) do
  pcall(modules.unload, m)
end
$(kresd_dnssec "$stub")
policy.add(policy.all(policy.REFUSE))
CONF
  ip netns exec "$NS_DNS" kresd -n -c "$d/config.lua" "$d" >"$W/resolver-kresd.log" 2>&1 </dev/null &
  EXTRA_PID[kresd]=$!
  wait_resolver_up "${EXTRA_PID[kresd]}" kresd
}

start_pdns_recursor() {
  local d="$W/pdns" a fwd=""
  mkdir -p "$d"
  for a in "${SHD_IPS[@]}"; do fwd+="${fwd:+;}$a"; done
  cat > "$d/refuse.lua" <<'LUA'
-- only smarthost.internal is resolved; everything else is refused without leaving the host
local zone = newDN("smarthost.internal.")
function preresolve(dq)
  if dq.qname:isPartOf(zone) then return false end
  dq.rcode = pdns.REFUSED
  return true
end
LUA
  if [ "$SHD_DNSSEC" = 1 ]; then
    # the zone's trust anchor; every answer validated, whatever the client asks (dnssec=validate)
    trust_anchor pdns > "$d/config.lua"
    PDNS_DNSSEC="dnssec=validate"
  else
    cat > "$d/config.lua" <<'LUA'
-- .internal has no chain of trust: a negative trust anchor (validation stays on elsewhere)
addNTA("smarthost.internal", "private zone served by smarthostd")
LUA
    PDNS_DNSSEC="dnssec=process"
  fi
  cat > "$d/recursor.conf" <<CONF
local-address=$IP_UNBOUND
local-port=53
allow-from=10.99.0.0/16
forward-zones=smarthost.internal=$fwd
lua-dns-script=$d/refuse.lua
lua-config-file=$d/config.lua
max-cache-ttl=1
max-negative-ttl=1
packetcache-ttl=1
packetcache-servfail-ttl=1
refresh-on-ttl-perc=0
$PDNS_DNSSEC
daemon=no
write-pid=no
disable-syslog=yes
log-common-errors=yes
socket-dir=$d
quiet=yes
CONF
  ip netns exec "$NS_DNS" pdns_recursor --config-dir="$d" >"$W/resolver-pdns-recursor.log" 2>&1 &
  EXTRA_PID[pdns_recursor]=$!
  wait_resolver_up "${EXTRA_PID[pdns_recursor]}" pdns_recursor
}

start_dnsmasq() {
  local args=() a
  for a in "${SHD_IPS[@]}"; do args+=("--server=/smarthost.internal/$a"); done
  # --no-resolv and no other --server: names outside smarthost.internal are refused.
  # dnsmasq caches A/AAAA (not MX); --max-cache-ttl caps them.
  ip netns exec "$NS_DNS" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --no-poll --user=nobody --pid-file="$W/dnsmasq.pid" --listen-address="$IP_UNBOUND" --bind-interfaces \
    --port=53 --max-cache-ttl=1 --neg-ttl=1 --log-facility=- "${args[@]}" >"$W/resolver-dnsmasq.log" 2>&1 &
  EXTRA_PID[dnsmasq]=$!
  wait_resolver_up "${EXTRA_PID[dnsmasq]}" dnsmasq
}

start_resolver() {
  case "$RES" in
    unbound) start_unbound ;;
    bind) start_bind ;;
    kresd) start_kresd ;;
    pdns-recursor) start_pdns_recursor ;;
    dnsmasq) start_dnsmasq ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# secondary: Knot as the secondary of smarthostd (a hidden primary), the resolver's only upstream
# ---------------------------------------------------------------------------------------------
# Knot 3.x at IP_SEC in its own namespace: it transfers smarthost.internal from smarthostd with
# the run's TSIG key and takes NOTIFY from smarthostd's address signed with it (deploy/GUIDE.md,
# section 15); waits until it serves smarthostd's serial (20 s).
start_secondary() {
  local d="$W/knot" i s_shd="" s_sec=""
  mkdir -p "$d/db"
  ( umask 077; cat > "$d/knot.conf" <<CONF
server:
    listen: $IP_SEC@53
    rundir: "$d"
log:
  - target: stderr
    any: info
database:
    storage: "$d/db"
key:
  - id: smarthost-xfr
    algorithm: hmac-sha256
    secret: $(cat "$W/tsig-secret")
remote:
  - id: smarthostd
    address: $IP_SHD@53
    key: smarthost-xfr
acl:
  - id: notify-from-smarthostd
    address: $IP_SHD
    key: smarthost-xfr
    action: notify
template:
  - id: default
    storage: "$d"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
zone:
  - domain: smarthost.internal
    master: smarthostd
    acl: notify-from-smarthostd
CONF
  )
  knotc -c "$d/knot.conf" conf-check >/dev/null || die "knotc conf-check failed"
  ip netns exec "$NS_SEC" knotd -c "$d/knot.conf" >"$W/secondary-knot.log" 2>&1 &
  EXTRA_PID[knotd]=$!
  for ((i = 0; i < 200; i++)); do
    kill -0 "${EXTRA_PID[knotd]}" 2>/dev/null || die "knotd exited (see its log)"
    s_shd=$(soa_serial "$IP_SHD") s_sec=$(soa_serial "$IP_SEC")
    [ -n "$s_sec" ] && [ "$s_sec" = "$s_shd" ] && { log "Knot serves the zone, serial $s_sec"; return 0; }
    sleep 0.1
  done
  die "Knot did not take the zone within 20 s (smarthostd's serial ${s_shd:-none}, Knot's ${s_sec:-none})"
}
soa_serial() { ip netns exec "$NS_MTA" dig +short +norec +time=1 +tries=1 @"$1" smarthost.internal SOA 2>/dev/null | awk '{ print $3 }'; }

# DNS queries (UDP, and TCP SYNs) to port 53 of smarthostd and of the secondary, counted by
# source in their namespaces: smarthostd may be asked by the secondary and by this script's own
# probes from the MTA namespace, by nothing else; the resolver must ask the secondary.
count_dns53_setup() {
  local ns addr
  for ns in "$NS_DNS" "$NS_SEC"; do
    [ "$ns" = "$NS_DNS" ] && addr=$IP_SHD || addr=$IP_SEC
    ip netns exec "$ns" nft -f - <<NFT
table inet she2e {
  counter from_resolver { }
  counter from_secondary { }
  counter from_others { }
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr $addr udp dport 53 goto count
    ip daddr $addr tcp dport 53 tcp flags & (syn | ack) == syn goto count
  }
  chain count {
    ip saddr $IP_UNBOUND counter name "from_resolver" return
    ip saddr $IP_SEC counter name "from_secondary" return
    ip saddr != $IP_MTA counter name "from_others"
  }
}
NFT
  done
}
dns53_count() { # dns53_count NAMESPACE COUNTER
  ip netns exec "$1" nft list counter inet she2e "$2" | awk '/packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }'
}

# The resolver is pointed at the secondary alone, and never asked smarthostd anything.
check_resolver_upstream() {
  local stubs to_sec from_sec at_shd others a
  stubs=$(sed -n 's/^ *stub-addr: *//p' "$W/unbound/unbound.conf" | tr '\n' ' ')
  check $([ "$stubs" = "$IP_SEC " ] && ! grep -q "$IP_SHD" "$W/unbound/unbound.conf" && echo 0 || echo 1) \
    "unbound's config names the secondary alone ($stubs) and not smarthostd's address"
  to_sec=$(dns53_count "$NS_SEC" from_resolver)
  at_shd=$(dns53_count "$NS_DNS" from_resolver)
  others=$(dns53_count "$NS_DNS" from_others)
  from_sec=$(dns53_count "$NS_DNS" from_secondary)
  log "DNS packets to port 53: unbound -> Knot $to_sec; Knot -> smarthostd $from_sec; unbound -> smarthostd $at_shd; any other source but the test's probes -> smarthostd $others"
  check $(( to_sec > 0 ? 0 : 1 )) "unbound asked the secondary ($to_sec queries)"
  check $(( at_shd == 0 && others == 0 ? 0 : 1 )) "unbound asked smarthostd nothing (0 packets from it or any other source)"
  check $(( from_sec > 0 ? 0 : 1 )) "the secondary asked smarthostd ($from_sec packets: SOA checks, transfers)"
  NOTIFIES=$(grep -c 'notify, incoming, remote '"$IP_SHD" "$W/secondary-knot.log" || true)
  IXFRS=$(grep -c 'kind="incremental"' "$W/smarthostd.log" || true)
  log "Knot's log: $NOTIFIES NOTIFY taken from smarthostd; smarthostd's log: $IXFRS incremental transfers"
  check $(( NOTIFIES > 0 ? 0 : 1 )) "the secondary took smarthostd's signed NOTIFY ($NOTIFIES)"
  check $(( IXFRS > 0 ? 0 : 1 )) "the secondary followed by IXFR ($IXFRS)"
  ! grep -qF "$(cat "$W/tsig-secret")" "$W/smarthostd.log" && a=0 || a=1
  check "$a" "the TSIG secret is nowhere in smarthostd's log"
}

# ---------------------------------------------------------------------------------------------
# MTAs
# ---------------------------------------------------------------------------------------------
EX="$W/exim" OS="$W/opensmtpd"
OPENSMTPD_KEEPALIVE=1
MTA_LOG=""           # the MTA's log, for the attempt count after withdrawal
ATTEMPTS_TOOL=""     # e2e_tools.py command that counts attempts in it

start_exim() {
  local route
  case "$MTA" in
    exim-mx) route="oxford.smarthost.internal/MX" ;;
    exim-byname) route="oxford.smarthost.internal byname" ;;
  esac
  write_resolv_conf
  start_exim_daemon "$route" "+millisec +outgoing_port +retry_defer" ""
  MTA_LOG="$EX/log/mainlog"
  ATTEMPTS_TOOL=exim-attempts
}

start_opensmtpd() {
  mkdir -p "$OS/spool/smtpd" "$OS/run"
  chmod 711 "$OS/spool/smtpd"
  write_resolv_conf
  cat > "$OS/smtpd.conf" <<CONF
listen on lo port 2525
# an idle session to a relay is kept 10 s by default, and the relay (with the addresses it
# resolved) lives as long as it has a session or a message: 1 s, so that mail sent after a change
# is routed by a fresh lookup (see the header)
mta limit session-keepalive $OPENSMTPD_KEEPALIVE
action "relay" relay host smtp://oxford.smarthost.internal
match from local for any action "relay"
CONF
  # OpenSMTPD's spool (/var/spool/smtpd), control socket (/var/run/smtpd.sock) and chroot
  # (/var/lib/opensmtpd/empty) are compiled in: it runs in a mount namespace of its own where
  # the work directory is mounted over those places.
  ip netns exec "$NS_MTA" unshare --mount --propagation private -- /bin/sh -c '
    mount --bind "$1/spool" /var/spool && mount -t tmpfs -o mode=755 tmpfs /var/lib \
      && mkdir -p /var/lib/opensmtpd/empty && mount --bind "$1/run" /run \
      && exec "$2" -d ${OPENSMTPD_VERBOSE:+-v} -f "$1/smtpd.conf"' sh "$OS" "$SMTPD" \
    > >(exec "$SYS_PY" -u -c 'import sys, time
for line in sys.stdin:
    sys.stdout.write("%.3f %s" % (time.time(), line))' > "$OS/smtpd.log") 2>&1 &
  EXTRA_PID[smtpd]=$!
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "${EXTRA_PID[smtpd]}" 2>/dev/null || { cat "$OS/smtpd.log"; die "smtpd exited"; }
    tcp_reachable "$NS_MTA" 127.0.0.1 2525 && { MTA_LOG="$OS/smtpd.log"; ATTEMPTS_TOOL=stamped-attempts; return 0; }
    sleep 0.1
  done
  die "smtpd did not start within 10 s"
}

start_mta() {
  case "$MTA" in
    postfix) RELAYHOST=oxford.smarthost.internal start_postfix; MTA_LOG="$MAILLOG"; ATTEMPTS_TOOL=attempts ;;
    postfix-bracketed) RELAYHOST="[oxford.smarthost.internal]" start_postfix; MTA_LOG="$MAILLOG"; ATTEMPTS_TOOL=attempts ;;
    exim-*) start_exim ;;
    opensmtpd) start_opensmtpd ;;
  esac
}

case "$MTA" in
  exim-*)
    send_batch() {
      ip netns exec "$NS_MTA" bash -c '
        set -e
        for i in $(seq "$3" "$4"); do
          tag=$(printf "%s-%05d" "$2" "$i")
          printf "From: sender@mta.e2e.test\nTo: rcpt@dest.e2e.test\nSubject: e2e %s\nX-E2E-Tag: %s\n\nmessage %s\n" \
            "$tag" "$tag" "$tag" | "$5" -C "$1" -odb -f sender@mta.e2e.test -- rcpt@dest.e2e.test
        done' send "$EX/exim.conf" "$1" "$2" "$3" "$EXIM"
    }
    queue_empty() { [ "$("$EXIM" -C "$EX/exim.conf" -bpc 2>/dev/null)" = 0 ]; }
    show_queue() { "$EXIM" -C "$EX/exim.conf" -bp 2>&1 | tail -n 10; }
    mta_failure_context() {
      [ -f "$EX/log/mainlog" ] && { echo "exim mainlog (tail):"; tail -n 30 "$EX/log/mainlog"; }
      [ -s "$EX/log/paniclog" ] && { echo "exim paniclog:"; grep -v 'lost privilege for using -C' "$EX/log/paniclog" | tail -n 10; }
      show_queue
    }
    mta_stop() { stop_pid "${EXTRA_PID[exim]:-}" exim; unset 'EXTRA_PID[exim]'; }
    ;;
  opensmtpd)
    send_batch() { ip netns exec "$NS_MTA" "$SYS_PY" "$HERE/e2e_tools.py" inject 127.0.0.1 2525 "$1" "$2" "$3"; }
    queue_files() { find "$OS/spool/smtpd/queue" "$OS/spool/smtpd/incoming" -type f 2>/dev/null | wc -l; }
    queue_empty() { [ "$(queue_files)" = 0 ]; }
    show_queue() { echo "files in the OpenSMTPD queue: $(queue_files)"; }
    mta_failure_context() { [ -f "$OS/smtpd.log" ] && { echo "smtpd log (tail):"; tail -n 40 "$OS/smtpd.log"; }; show_queue; }
    # smtpd's parent, on SIGTERM, waits for its children, which do not all leave by themselves:
    # its children (by parent process id) get SIGTERM first.
    mta_stop() {
      local p="${EXTRA_PID[smtpd]:-}" c
      if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
        for c in $(ps -o pid= --ppid "$p"); do kill -TERM "$c" 2>/dev/null || true; done
      fi
      stop_pid "$p" smtpd; unset 'EXTRA_PID[smtpd]'
    }
    ;;
esac

# OpenSMTPD only. Mail already queued for the relay when its addresses die is not re-resolved: the
# relay keeps the addresses it resolved while it has mail, each dead address's route is disabled
# (15 s), then every message of the relay is temporarily failed ("Network error on destination
# MXs") and the scheduler retries it only 400 s after its arrival (BACKOFF_TRANSFER, hard-coded,
# no setting). This waits for the messages sent after withdrawal + slack (they must be delivered
# at once, through a freshly resolved relay), counts those still held, and releases them with
# `smtpctl schedule all`, the operator's command, so the run stays within minutes.
release_opensmtpd_held() { # release_opensmtpd_held PHASE COUNT
  local i
  for ((i = 0; i < DELIVERY_TIMEOUT * 5; i++)); do
    [ "$(delivered "$1-")" -ge "$2" ] && break
    sleep 0.2
  done
  HELD=$(( N - $(delivered "$1-") ))
  log "phase 2: $(delivered "$1-") delivered without help; $HELD held by OpenSMTPD's retry backoff: smtpctl schedule all"
  nsenter --target "${EXTRA_PID[smtpd]}" --mount --net "$MTA_ROOT/usr/sbin/smtpctl" schedule all \
    || die "smtpctl schedule all failed"
}

# OpenSMTPD only: it routes mail already queued for the relay with the addresses the relay
# resolved, until it gives that relay up: after a connection attempt to each dead address
# (conn-delay-relay 2 s apart) and a "No valid route", it fails the relay's messages temporarily
# (TempFail, "Network error on destination MXs"), some 7-12 s after the kill here. Mail that
# arrives before then joins the old relay. So B (withdrawal + slack) is moved, if need be, to 1 s
# after that TempFail line (waited for at most 60 s); T_GIVEUP records when it came.
T_GIVEUP=""
opensmtpd_relay_released() {
  local i line
  for ((i = 0; i < 600; i++)); do
    line=$(tail -c +"$(( LOG_OFF_OUT + 1 ))" "$MTA_LOG" | grep -m1 -E 'stat="(Network error on destination MXs|No valid route)' || true)
    [ -n "$line" ] && break
    sleep 0.1
  done
  [ -n "$line" ] || die "OpenSMTPD never gave up the relay it resolved before the kill"
  T_GIVEUP=${line%% *}
  log "OpenSMTPD gave up its old relay $(calc "$T_GIVEUP - $T_OUT") s after the kill"
  B=$(awk -v b="$B" -v g="$T_GIVEUP" 'BEGIN { printf "%.3f", (g + 1 > b ? g + 1 : b) }')
}

# mta_outcome: sets SENT BOUNCED PANIC (the MTA's own account of the run) from its log
mta_outcome() {
  case "$MTA" in
    postfix*)
      SENT=$(postfix_log_count 'status=sent')
      BOUNCED=$(( $(postfix_log_count 'status=bounced') + $(postfix_log_count 'status=expired') ))
      PANIC=$(grep -cE 'postfix/[a-z-]+\[[0-9]+\]: (fatal|panic):' "$MAILLOG" || true) ;;
    exim-*)
      SENT=$(grep -c ' => ' "$EX/log/mainlog" || true)
      BOUNCED=$(( $(grep -c ' \*\* ' "$EX/log/mainlog" || true) + $(grep -c ' <= <> ' "$EX/log/mainlog" || true) ))
      # Exim re-executing itself as its own user with -C logs "exim user lost privilege for
      # using -C option" to the panic log (the config is not in Debian's TRUSTED_CONFIG_LIST,
      # /etc/exim4/trusted_configs, which this test does not touch): expected, not counted.
      PANIC=$(grep -vc 'exim user lost privilege for using -C option' "$EX/log/paniclog" 2>/dev/null || true) ;;
    opensmtpd)
      SENT=$(grep -c 'mta delivery .*result="Ok"' "$OS/smtpd.log" || true)
      BOUNCED=$(grep -c 'result="PermFail"' "$OS/smtpd.log" || true)
      PANIC=$(grep -ciE 'fatal|exiting' "$OS/smtpd.log" || true) ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# The failover cells (killed mode, N per phase)
# ---------------------------------------------------------------------------------------------
tools() { "$SYS_PY" "$HERE/e2e_tools.py" "$@"; }
log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# table_row FIELDS...: appends one row to the table of the "all" run (and prints it)
table_row() {
  local row
  row="$(IFS='|'; echo "$*")"
  log "ROW $row"
  [ -n "${E2E_TABLE_FILE:-}" ] && echo "$row" >> "$E2E_TABLE_FILE"
  return 0
}

mta_desc() {
  case "$MTA" in
    postfix) echo "Postfix relayhost=name (MX)" ;;
    postfix-bracketed) echo "Postfix relayhost=[name] (A)" ;;
    exim-mx) echo "Exim manualroute name/MX (MX)" ;;
    exim-byname) echo "Exim manualroute byname (A)" ;;
    opensmtpd) echo "OpenSMTPD relay host (A)" ;;
  esac
}

run_failover() {
  log "cell=$CELL mta=$MTA resolver=$RES N=$N slack=${SLACK}s smarthostd=$SMARTHOSTD_BIN work=$W"
  setup_network
  [ "$SECONDARY" = 1 ] && count_dns53_setup
  start_sinks
  start_smarthostd 1
  [ "$SECONDARY" = 1 ] && start_secondary
  start_resolver
  wait_answer is_full "$IP_UNBOUND" "$CHANGE_TIMEOUT" >/dev/null \
    || die "the resolver never showed the full oxford answer"
  check_outside_refused
  start_mta
  log "everything up in $(calc "$(now) - $RUN_START") s; oxford $ANSWER_QTYPE via $RES: $(mx_answer "$IP_UNBOUND" | tr '\n' ' ')"

  # --- phase 1: baseline ----------------------------------------------------------------------
  log "phase 1 (baseline): sending $N messages"
  local t0; t0=$(now)
  send_batch p1 1 "$N"
  wait_delivered p1 "$N" || die "phase 1: not all mail delivered"
  phase_counts p1; P1C=$PC
  log "phase 1 took $(calc "$(now) - $t0") s"
  check $(( C[oxford-mail1] + C[oxford-mail2] == N ? 0 : 1 )) "phase 1: all $N at oxford"
  check $(( C[oxford-mail1] > 0 && C[oxford-mail2] > 0 ? 0 : 1 )) "phase 1: both oxford hosts got mail"
  check $(( C[cambridge-mail1] + C[cambridge-mail2] == 0 ? 0 : 1 )) "phase 1: none at cambridge"

  # --- phase 2: failover ----------------------------------------------------------------------
  local half=$(( N / 2 )) ad_pid=""
  if [ "$SHD_DNSSEC" = 1 ]; then
    local first_ad; first_ad=$(ad_status "$IP_UNBOUND")
    log "$RES before the failover: $first_ad"
    check $([ "$first_ad" = "NOERROR ad" ] && echo 0 || echo 1) "$RES validates the answer before the failover (AD=1)"
    # every 100 ms until stopped (2 s after the resolver shows the withdrawal; bounded: 60 s)
    ( for ((k = 0; k < 600; k++)); do printf '%s %s\n' "$(now)" "$(ad_status "$IP_UNBOUND")"; sleep 0.1; done ) > "$W/ad-watch.log" &
    ad_pid=$!
  fi
  SYN_BEFORE=$(syn_count)
  log "phase 2 (failover): killing both oxford relays, sending $half messages at once"
  LOG_OFF_OUT=$(log_size "$MTA_LOG")
  T_OUT=$(now)
  take_down
  send_batch p2 1 "$half" >"$W/send-p2a.log" 2>&1 &
  local send_pid=$!
  T_WD=$(wait_answer is_withdrawn "$IP_SHD" "$CHANGE_TIMEOUT") || die "smarthostd never withdrew the oxford hosts"
  if [ "$SECONDARY" = 1 ]; then
    T_WD_SEC=$(wait_answer is_withdrawn "$IP_SEC" "$CHANGE_TIMEOUT") || die "the secondary never showed the withdrawal"
    log "the secondary withdrew oxford $(calc "$T_WD_SEC - $T_WD") s after smarthostd"
  fi
  T_WD_RES=$(wait_answer is_withdrawn "$IP_UNBOUND" "$CHANGE_TIMEOUT") || die "the resolver never showed the withdrawal"
  log "smarthostd withdrew oxford $(calc "$T_WD - $T_OUT") s after the kill; $RES followed $(calc "$T_WD_RES - $T_WD") s later;" \
      "answer: $(mx_answer "$IP_SHD" | tr '\n' ' ')"
  if [ -n "$ad_pid" ]; then
    sleep_until "$(calc "$T_WD_RES + 2")"
    kill "$ad_pid" 2>/dev/null || true; wait "$ad_pid" 2>/dev/null || true
    local asked bad
    asked=$(wc -l < "$W/ad-watch.log")
    bad=$(grep -vc ' NOERROR ad$' "$W/ad-watch.log" || true)
    log "$RES through the failover: $asked answers, $bad without AD=1 or not NOERROR"
    [ "$bad" = 0 ] || grep -v ' NOERROR ad$' "$W/ad-watch.log" | head -n 5
    check $(( asked > 10 && bad == 0 ? 0 : 1 )) "$RES: AD=1 and no SERVFAIL from the kill to 2 s after the withdrawal ($asked answers)"
  fi
  wait "$send_pid" || die "sending the first half of phase 2 failed: $(cat "$W/send-p2a.log")"
  B=$(calc "$T_WD + $SLACK")
  if [ "$MTA" = opensmtpd ]; then opensmtpd_relay_released; fi
  sleep_until "$B"
  SYN_AT_B=$(syn_count)
  SLACK_USED=$(calc "$B - $T_WD")
  log "withdrawal + ${SLACK_USED}s slack reached; sending the other $(( N - half )) messages"
  send_batch p2 $(( half + 1 )) "$N"
  HELD=0
  if [ "$MTA" = opensmtpd ]; then release_opensmtpd_held p2 $(( N - half )); fi
  wait_delivered p2 "$N" || die "phase 2: not all mail delivered"
  T_P2_DONE=$(now)
  SYN_END=$(syn_count)
  phase_counts p2; P2C=$PC
  T_FIRST_REMOTE=$(tools first "$SINKS" cambridge p2- "$T_OUT")
  read -r ATT_AFTER ATT_BEFORE < <(tools "$ATTEMPTS_TOOL" "$MTA_LOG" "$LOG_OFF_OUT" "$(log_size "$MTA_LOG")" "$B" "${OX_IPS[@]}" 2>"$W/attempts-after.txt")
  SYN_AFTER=$(( SYN_END - SYN_AT_B ))
  log "phase 2: first delivery at cambridge $(calc "$T_FIRST_REMOTE - $T_OUT") s after the kill"
  log "phase 2: MTA attempts to oxford (log lines): $ATT_BEFORE kill..withdrawal+slack, $ATT_AFTER after"
  log "phase 2: SYNs from the MTA to oxford: $(( SYN_AT_B - SYN_BEFORE )) kill..withdrawal+slack, $SYN_AFTER after"
  [ "$ATT_AFTER" = 0 ] || { echo "first of them:"; head -n 5 "$W/attempts-after.txt"; }
  check $(( C[cambridge-mail1] + C[cambridge-mail2] == N ? 0 : 1 )) "phase 2: all $N at cambridge"
  check $(( C[cambridge-mail1] > 0 && C[cambridge-mail2] > 0 ? 0 : 1 )) "phase 2: both cambridge hosts got mail"
  check $(( C[oxford-mail1] + C[oxford-mail2] == 0 ? 0 : 1 )) "phase 2: none at oxford"
  check $(( ATT_AFTER == 0 ? 0 : 1 )) "phase 2: no MTA connection attempt to oxford logged after withdrawal + ${SLACK_USED}s"
  check $(( SYN_AFTER == 0 ? 0 : 1 )) "phase 2: no SYN from the MTA to oxford after withdrawal + ${SLACK_USED}s"

  # --- phase 3: failback ----------------------------------------------------------------------
  log "phase 3 (failback): restarting the oxford relays"
  bring_back
  T_BACK=$(now)   # the return: both restarted relays listen (a loaded machine takes seconds to start them)
  T_RS=$(wait_answer is_restored "$IP_SHD" "$CHANGE_TIMEOUT") || die "smarthostd never listed the oxford hosts again"
  if [ "$SECONDARY" = 1 ]; then
    T_RS_SEC=$(wait_answer is_restored "$IP_SEC" "$CHANGE_TIMEOUT") || die "the secondary never showed oxford again"
    log "the secondary listed oxford again $(calc "$T_RS_SEC - $T_RS") s after smarthostd"
  fi
  T_RS_RES=$(wait_answer is_restored "$IP_UNBOUND" "$CHANGE_TIMEOUT") || die "the resolver never showed oxford again"
  log "smarthostd listed oxford again $(calc "$T_RS - $T_BACK") s after the return; $RES followed $(calc "$T_RS_RES - $T_RS") s later"
  if [ "$MTA" = opensmtpd ]; then
    # its relay to cambridge (and the addresses it resolved) must have been let go for mail to
    # be routed by a new lookup: idle sessions close after session-keepalive, and the relay is
    # kept for its next source check, 10 s (DELAY_CHECK_SOURCE_SLOW, hard-coded)
    sleep_until "$(calc "$T_P2_DONE + $OPENSMTPD_KEEPALIVE + 10 + 1")"
  fi
  log "phase 3: sending $N messages"
  T_P3=$(now)
  send_batch p3 1 "$N"
  wait_delivered p3 "$N" || die "phase 3: not all mail delivered"
  phase_counts p3; P3C=$PC
  T_FIRST_LOCAL=$(tools first "$SINKS" oxford p3- "$T_P3")
  check $(( C[oxford-mail1] + C[oxford-mail2] == N ? 0 : 1 )) "phase 3: all $N back at oxford"
  check $(( C[oxford-mail1] > 0 && C[oxford-mail2] > 0 ? 0 : 1 )) "phase 3: both oxford hosts got mail"
  check $(( C[cambridge-mail1] + C[cambridge-mail2] == 0 ? 0 : 1 )) "phase 3: none at cambridge"

  # --- whole run ------------------------------------------------------------------------------
  finish_run $(( 3 * N ))
  local via=""
  if [ "$SECONDARY" = 1 ]; then
    check_resolver_upstream
    check $(awk -v w="$(calc "$T_WD_SEC - $T_WD")" 'BEGIN { exit !(w < 2) }' && echo 0 || echo 1) \
      "the secondary withdrew oxford within 2 s of smarthostd ($(calc "$T_WD_SEC - $T_WD") s)"
    via=", through the Knot secondary: withdrawn +$(calc "$T_WD_SEC - $T_WD")s, re-listed +$(calc "$T_RS_SEC - $T_RS")s after smarthostd"
  fi
  local result=PASS; [ "$FAILED" = 0 ] || result=FAIL
  [ "$HELD" = 0 ] || result="$result ($HELD held, released by smtpctl schedule all)"
  [ "$SECONDARY" = 1 ] && result="$result; secondary +$(calc "$T_WD_SEC - $T_WD") / +$(calc "$T_RS_SEC - $T_RS")"
  table_row "$CELL" "$(mta_desc)" "$RES$([ "$SECONDARY" = 1 ] && echo ' -> Knot secondary')" "$(calc "$T_WD - $T_OUT")" "$(calc "$T_WD_RES - $T_WD")" \
    "$(calc "$T_FIRST_REMOTE - $T_OUT")" "$SYN_AFTER/$ATT_AFTER" "$SLACK_USED" "$(calc "$T_RS - $T_BACK")" \
    "$(calc "$T_RS_RES - $T_RS")" "$(calc "$T_FIRST_LOCAL - $T_BACK")" "$result"
  summary "baseline $P1C; failover $P2C; failback $P3C; withdrawn $(calc "$T_WD - $T_OUT")s after the kill (resolver +$(calc "$T_WD_RES - $T_WD")s), first cambridge delivery $(calc "$T_FIRST_REMOTE - $T_OUT")s after the kill, attempts to oxford after withdrawal+${SLACK_USED}s: syn=$SYN_AFTER log=$ATT_AFTER (before: syn=$(( SYN_AT_B - SYN_BEFORE )) log=$ATT_BEFORE), re-listed $(calc "$T_RS - $T_BACK")s after the return (resolver +$(calc "$T_RS_RES - $T_RS")s), first in-site delivery $(calc "$T_FIRST_LOCAL - $T_BACK")s after the return$via"
}

# The resolver resolves nothing outside smarthost.internal (it must neither recurse to the root
# nor forward elsewhere): a name outside gets REFUSED or NXDOMAIN, at once.
check_outside_refused() {
  local st
  st=$(ip netns exec "$NS_MTA" dig +time=2 +tries=1 @"$IP_UNBOUND" www.example.org A 2>&1 | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
  log "$RES answers www.example.org A with ${st:-no answer}"
  check $([ "$st" = REFUSED ] || [ "$st" = NXDOMAIN ] && echo 0 || echo 1) "$RES resolves nothing outside smarthost.internal ($st)"
}

# finish_run TOTAL: the checks over the whole run
finish_run() {
  local total="$1" a alive
  AUDIT=$(tools audit "$SINKS" "$total") && a=0 || a=$?
  log "sinks: $AUDIT"
  check "$a" "every message stored exactly once, no bounce message at a sink"
  assert "MTA queue empty" -- queue_empty
  mta_outcome
  log "$MTA log: delivered=$SENT bounced=$BOUNCED fatal/panic=$PANIC"
  check $(( BOUNCED == 0 ? 0 : 1 )) "the MTA bounced nothing"
  check $(( SENT == total ? 0 : 1 )) "the MTA logged $total deliveries"
  check $(( PANIC == 0 ? 0 : 1 )) "the MTA logged no fatal/panic"
  local inst
  for inst in "${!SHD_PID[@]}"; do
    kill -0 "${SHD_PID[$inst]}" 2>/dev/null && alive=0 || alive=1
    check "$alive" "smarthostd $inst still running"
  done
}

summary() {
  local result=PASS; [ "$FAILED" = 0 ] || result=FAIL
  local s="SUMMARY $CELL $result: N=$N; $*; run $(calc "$(now) - $RUN_START")s"
  echo "$s"
  [ -n "${E2E_SUMMARY_FILE:-}" ] && echo "$s" >> "$E2E_SUMMARY_FILE"
  return 0
}

# ---------------------------------------------------------------------------------------------
# two-ns: two smarthostd instances behind unbound
# ---------------------------------------------------------------------------------------------
INFRA_HOST_TTL=${E2E_INFRA_HOST_TTL:-10}
SPREAD_TRIALS=${E2E_SPREAD_TRIALS:-5}

# queries from the resolver to each instance, counted in the dns namespace
count_resolver_queries_setup() {
  ip netns exec "$NS_DNS" nft -f - <<NFT
table inet she2e {
  counter q1 { }
  counter q2 { }
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr $IP_UNBOUND ip daddr $IP_SHD udp dport 53 counter name "q1"
    ip saddr $IP_UNBOUND ip daddr $IP_SHD2 udp dport 53 counter name "q2"
    ip saddr $IP_UNBOUND ip daddr $IP_SHD tcp dport 53 tcp flags & (syn | ack) == syn counter name "q1"
    ip saddr $IP_UNBOUND ip daddr $IP_SHD2 tcp dport 53 tcp flags & (syn | ack) == syn counter name "q2"
  }
}
NFT
}
resolver_queries() { # resolver_queries 1|2
  ip netns exec "$NS_DNS" nft list counter inet she2e "q$1" | awk '/packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }'
}
lacks_mail1() { # answer names oxford's mail2 but not its mail1
  grep -q 'mail2\.oxford' <<<"$1" && ! grep -q 'mail1\.oxford' <<<"$1"
}
answers_at() { # answers_at SERVER: 0 if SERVER answers the oxford MX at all
  ip netns exec "$NS_MTA" dig +short +time=1 +tries=1 @"$1" oxford.smarthost.internal MX 2>/dev/null | grep -q '^[0-9]'
}
# both_show STATE: polls both instances every 50 ms (15 s at most) until each answers STATE;
# sets SPREAD to how far apart they first did
both_show() {
  local out t1 t2
  out=$(ip netns exec "$NS_MTA" "$SYS_PY" "$HERE/e2e_tools.py" watch "$(calc "$(now) + 15")" 0.05 "$1" "$IP_SHD" "$IP_SHD2") || return 1
  t1=$(awk -v a="$IP_SHD" '$2 == a { print $1 }' <<<"$out")
  t2=$(awk -v a="$IP_SHD2" '$2 == a { print $1 }' <<<"$out")
  SPREAD=$(calc "($t1 > $t2) ? $t1 - $t2 : $t2 - $t1")
}


run_two_ns() {
  # outgoing-interface: queries to the instances come from the resolver's address (they share
  # the namespace, where the kernel would pick each instance's own address as the source)
  UNBOUND_EXTRA="  infra-host-ttl: $INFRA_HOST_TTL
  outgoing-interface: $IP_UNBOUND"
  log "cell=two-ns N=$N instances ${SHD_IPS[*]} infra-host-ttl=${INFRA_HOST_TTL}s work=$W"
  setup_network
  count_resolver_queries_setup
  start_sinks
  start_smarthostd 1
  start_smarthostd 2
  start_unbound
  wait_answer is_full "$IP_UNBOUND" "$CHANGE_TIMEOUT" >/dev/null || die "the resolver never showed the full oxford answer"
  check_outside_refused
  start_postfix
  log "everything up in $(calc "$(now) - $RUN_START") s"

  # --- phase 1: both instances, all relays up ------------------------------------------------
  send_batch p1 1 "$N"
  wait_delivered p1 "$N" || die "phase 1: not all mail delivered"
  phase_counts p1; P1C=$PC
  check $(( C[oxford-mail1] + C[oxford-mail2] == N ? 0 : 1 )) "phase 1: all $N at oxford"
  local q1a q2a
  q1a=$(resolver_queries 1) q2a=$(resolver_queries 2)
  log "phase 1: queries from unbound: instance 1 $q1a, instance 2 $q2a"
  check $(( q1a > 0 && q2a > 0 ? 0 : 1 )) "phase 1: unbound asked both instances"

  # --- phase 1b: a drain made on instance 1 alone reaches instance 2 ([cluster]) --------------
  # unbound asks both instances: had instance 2 not taken the drain, some mail would reach mail1.
  local out has1 has2
  out=$(ip netns exec "$NS_DNS" "$SMARTHOSTD_BIN" drain oxford/mail1 -c "$(shd_dir 1)/smarthost.toml" 2>&1) \
    || die "phase 1b: the drain on instance 1 failed: $out"
  log "phase 1b: drain on instance 1: $(tr '\n' ' ' <<<"$out")"
  grep -q "$(shd_admin 2) *applied" <<<"$out" && a=0 || a=1
  check "$a" "phase 1b: the drain's reply names instance 2 and says applied"
  has1=$(mx_answer "$IP_SHD" MX | grep -c 'mail1\.oxford' || true)
  has2=$(mx_answer "$IP_SHD2" MX | grep -c 'mail1\.oxford' || true)
  check $(( has1 + has2 == 0 ? 0 : 1 )) "phase 1b: neither instance names oxford's mail1 once the command returned"
  wait_answer lacks_mail1 "$IP_UNBOUND" "$CHANGE_TIMEOUT" >/dev/null || die "phase 1b: the resolver never left mail1 out"
  send_batch p1b 1 "$N"
  wait_delivered p1b "$N" || die "phase 1b: not all mail delivered"
  phase_counts p1b; P1BC=$PC
  check $(( C[oxford-mail1] == 0 && C[oxford-mail2] == N ? 0 : 1 )) "phase 1b: all $N at oxford's mail2, none at the drained mail1"
  out=$(ip netns exec "$NS_DNS" "$SMARTHOSTD_BIN" undrain oxford/mail1 -c "$(shd_dir 2)/smarthost.toml" 2>&1) \
    || die "phase 1b: the undrain on instance 2 failed: $out"
  is_full "$(mx_answer "$IP_SHD" MX)" && a=0 || a=1
  check "$a" "phase 1b: the undrain made on instance 2 is in instance 1's answer when the command returns"
  wait_answer is_full "$IP_UNBOUND" "$CHANGE_TIMEOUT" >/dev/null || die "phase 1b: the resolver never showed the full answer again"

  # --- phase 2: instance 2 SIGKILLed in the middle of a batch -----------------------------------
  local half=$(( N / 2 ))
  log "phase 2: sending $N messages, instance 2 SIGKILLed after $half"
  send_batch p2 1 "$half"
  T_K2=$(now)
  kill -KILL "${SHD_PID[2]}"; wait "${SHD_PID[2]}" 2>/dev/null || true; unset 'SHD_PID[2]'
  local q2k i; q2k=$(resolver_queries 2)
  # the rest over about 2.5 s, so that unbound meets the dead instance while mail flows
  for ((i = half + 1; i <= N; i++)); do send_batch p2 "$i" "$i"; sleep 0.1; done
  wait_delivered p2 "$N" || die "phase 2: not all mail delivered"
  phase_counts p2; P2C=$PC
  Q2_DEAD=$(( $(resolver_queries 2) - q2k ))
  log "phase 2: queries unbound sent to the dead instance 2: $Q2_DEAD"
  check $(( C[oxford-mail1] + C[oxford-mail2] == N ? 0 : 1 )) "phase 2: all $N at oxford, through the kill of instance 2"
  assert "phase 2: instance 1 answers" -- answers_at "$IP_SHD"
  if answers_at "$IP_SHD2"; then check 1 "phase 2: instance 2 is gone"; else check 0 "phase 2: instance 2 is gone"; fi
  is_full "$(mx_answer "$IP_UNBOUND")" && a=0 || a=1
  check "$a" "phase 2: the survivor answers alone: unbound still gives the full answer"

  # --- phase 3: oxford's relays die while instance 2 is down; instance 2 restarts -------------
  log "phase 3: killing the oxford relays with instance 2 down"
  local syn0; syn0=$(syn_count)
  T_OUT=$(now)
  take_down
  T_WD=$(wait_answer is_withdrawn "$IP_SHD" "$CHANGE_TIMEOUT") || die "instance 1 never withdrew oxford"
  log "instance 1 withdrew oxford $(calc "$T_WD - $T_OUT") s after the kill; restarting instance 2"
  local q2b; q2b=$(resolver_queries 2)
  T_R2=$(now)
  launch_smarthostd 2
  FIRST2=$(ip netns exec "$NS_MTA" "$SYS_PY" "$HERE/e2e_tools.py" first-answer "$IP_SHD2" 20) || die "instance 2 did not answer within 20 s of its restart"
  read -r T_FIRST2 STATE2 ADDRS2 <<<"$FIRST2"
  log "instance 2 answered $(calc "$T_FIRST2 - $T_R2") s after its restart; first answer: $STATE2 ($ADDRS2)"
  check $([ "$STATE2" = remote ] && echo 0 || echo 1) "phase 3: the restarted instance's first answer already leaves the dead oxford relays out"
  wait_smarthostd_ready 2
  log "phase 3: sending $N messages"
  send_batch p3 1 "$N"
  wait_delivered p3 "$N" || die "phase 3: not all mail delivered"
  phase_counts p3; P3C=$PC
  check $(( C[cambridge-mail1] + C[cambridge-mail2] == N ? 0 : 1 )) "phase 3: all $N at cambridge"

  # --- phase 4: the relays return; unbound uses instance 2 again --------------------------------
  bring_back
  T_BACK=$(now)
  T_RS=$(wait_answer is_restored "$IP_UNBOUND" "$CHANGE_TIMEOUT") || die "the resolver never showed oxford again"
  log "phase 4: unbound shows oxford $(calc "$T_RS - $T_BACK") s after the return; sending at least $N messages, until instance 2 is asked again (at most ${INFRA_HOST_TTL}s + 10 s, 120 s)"
  local t_rejoin="" deadline limit
  limit=$(( INFRA_HOST_TTL + 10 < 120 ? INFRA_HOST_TTL + 10 : 120 ))
  deadline=$(calc "$(now) + $limit")
  i=0
  while :; do
    i=$(( i + 1 ))
    send_batch p4 "$i" "$i"
    if [ "$(resolver_queries 2)" -gt "$q2b" ] && [ -z "$t_rejoin" ]; then t_rejoin=$(now); fi
    { [ -n "$t_rejoin" ] && [ "$i" -ge "$N" ]; } && break
    [ "$i" -ge $(( 50 * N )) ] && break
    awk -v n="$(now)" -v d="$deadline" 'BEGIN { exit !(n > d) }' && [ "$i" -ge "$N" ] && break
    sleep 0.05
  done
  P4=$i
  wait_delivered p4 "$P4" || die "phase 4: not all mail delivered"
  phase_counts p4; P4C=$PC
  check $(( C[oxford-mail1] + C[oxford-mail2] == P4 ? 0 : 1 )) "phase 4: all $P4 back at oxford"
  REJOIN=none
  [ -n "$t_rejoin" ] && REJOIN=$(calc "$t_rejoin - $T_R2")
  log "phase 4: unbound asked the restarted instance again $REJOIN s after its restart (queries to it: $(( $(resolver_queries 2) - q2b )))"
  check $([ -n "$t_rejoin" ] && echo 0 || echo 1) "phase 4: unbound asks the restarted instance again"

  # --- spread: both running, the oxford relays die and return, SPREAD_TRIALS times -------------
  local k out t1 t2 wd_spreads=() rs_spreads=() bound
  bound=$(calc "1 + 1 + 0.1")   # probe interval + timeout, plus two 50 ms polls
  for ((k = 1; k <= SPREAD_TRIALS; k++)); do
    sleep "0.$(( RANDOM % 9 + 1 ))"   # a random phase against the probe schedules
    take_down
    both_show remote || die "spread trial $k: the instances did not both withdraw oxford within 15 s"
    wd_spreads+=("$SPREAD")
    bring_back
    both_show oxford || die "spread trial $k: the instances did not both list oxford again within 15 s"
    rs_spreads+=("$SPREAD")
    log "spread trial $k: withdrawals ${wd_spreads[-1]} s apart, re-listings ${rs_spreads[-1]} s apart"
  done
  WD_MAX=$(printf '%s\n' "${wd_spreads[@]}" | sort -g | tail -n 1)
  WD_MED=$(printf '%s\n' "${wd_spreads[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  RS_MAX=$(printf '%s\n' "${rs_spreads[@]}" | sort -g | tail -n 1)
  check $(awk -v m="$WD_MAX" -v b="$bound" 'BEGIN { exit !(m <= b) }' && echo 0 || echo 1) \
    "withdrawal spread between the instances at most ${bound}s (probe interval + timeout + polling): max ${WD_MAX}s"

  finish_run $(( 4 * N + P4 ))
  local result=PASS; [ "$FAILED" = 0 ] || result=FAIL
  summary "baseline $P1C; drained on instance 1 (cluster): $P1BC; instance 2 killed mid-batch: $P2C; relays killed, instance 2 restarted: $P3C, its first answer $STATE2 $(calc "$T_FIRST2 - $T_R2")s after restart; back: $P4C, unbound asked instance 2 again ${REJOIN}s after its restart (infra-host-ttl ${INFRA_HOST_TTL}s); withdrawal spread over $SPREAD_TRIALS trials: median ${WD_MED}s max ${WD_MAX}s (re-listing max ${RS_MAX}s)"
  table_row "$CELL" "Postfix relayhost=name (MX)" "unbound, 2 instances" "$(calc "$T_WD - $T_OUT")" "-" "-" "-" "-" "$(calc "$T_RS - $T_BACK")" "-" "-" "$result; spread median ${WD_MED} max ${WD_MAX}"
}

if [ "$CELL" = two-ns ]; then run_two_ns; else run_failover; fi
[ "$FAILED" = 0 ] || exit 1
exit 0
