#!/usr/bin/env bash
# mta-failover.sh: end-to-end proof, with real software, that mail keeps flowing through a
# site's smart hosts failing and coming back when the MTA's relayhost is a smarthostd
# pseudo-domain.
#
# WHAT IT PROVES
#   A real Postfix (Debian's package, its own instance) with `relayhost = oxford.smarthost.internal`
#   (no brackets: MX lookups) resolves through a real unbound (stub-zone smarthost.internal ->
#   smarthostd, low cache limits) and relays to SMTP sinks standing in for two sites' smart hosts
#   (oxford: mail1 10.99.1.11, mail2 10.99.1.12; cambridge: mail1 10.99.2.21, mail2 10.99.2.22).
#   For one failure MODE it runs three phases of N messages each:
#     1 baseline  N messages all reach oxford, spread over both oxford hosts, none cambridge.
#     2 failover  both oxford hosts go down (MODE); N/2 messages are sent at once, the rest once
#                 smarthostd has withdrawn the hosts plus the slack below. All N reach cambridge.
#                 After withdrawal + slack the MTA makes NO connection attempt to an oxford host:
#                 counted from Postfix's log and, independently, as SYN packets from the MTA to the
#                 oxford addresses (nftables counter in the oxford namespace). A static zone would
#                 make every one of those deliveries try oxford first, so this count is what tells
#                 a live zone from a static one.
#     3 failback  the oxford hosts come back; once smarthostd lists them again (seen through the
#                 resolver) N messages are sent, and all of them reach oxford, both hosts.
#   and checks that nothing was lost (every tagged message stored exactly once), nothing bounced
#   (no bounced/expired status in the Postfix log, no bounce message at a sink), nothing is left
#   queued (postqueue -p). It prints the counts, the time from the outage to smarthostd's
#   withdrawal and to the first delivery at cambridge, and the attempts after withdrawal.
#
#   MODEs (how both oxford hosts are taken down and brought back):
#     killed      the sink processes are SIGKILLed (connection refused) and later restarted.
#     blackholed  nftables in the oxford namespace drops TCP to port 25 of both addresses
#                 (connect times out), later the drop is removed.
#     hung        the sink processes are SIGSTOPped: the kernel still accepts TCP, nobody greets;
#                 later SIGCONT.
#   and a negative control:
#     static-control  as killed, but unbound answers the smart-host names from a frozen copy of
#                 the all-up answer (local-data), i.e. a static zone. Here the MTA must keep
#                 trying the dead oxford hosts after smarthostd's withdrawal, and the run checks
#                 that it does (attempt counts > 0): proof that the counts above can tell a live
#                 zone from a static one, and are not zero merely because nothing was counted.
#
# HOW TO RUN (as root; CI runs it like this)
#   bash tests/e2e/mta-failover.sh [-n N] [killed|blackholed|hung|static-control|all]
#   (default: all = the three modes and the control, each its own run; N=200)
#   Environment:
#     SMARTHOSTD_BIN  the smarthostd binary (default: target/release/smarthostd in the repo)
#     E2E_MESSAGES    N, messages per phase (>= 200 unless E2E_ALLOW_SMALL=1; -n wins)
#     E2E_KEEP=1      keep the work directory (logs, configs, stored messages) for inspection
#     E2E_DELIVERY_TIMEOUT  seconds one phase's mail may take to be delivered (default 150)
#     TMPDIR          where the work directory goes (default /tmp); the postfix user must be
#                     able to enter it, as Postfix's daemons work in the queue there
#   It ends with a line "mta-failover: P passed, F failed" and exits non-zero on any failure.
#
# WHAT IT NEEDS
#   root, Linux network namespaces, nftables, and Debian packages postfix, unbound,
#   python3-aiosmtpd, iproute2, nftables, dnsutils, curl; it apt-get installs the missing ones
#   (with service starts denied through policy-rc.d while installing, so neither the system's
#   postfix nor its unbound is ever started). The sinks run under Debian's /usr/bin/python3.
#
# ISOLATION
#   Everything runs in network namespaces made here, named she2e<pid>-{core,dns,mta,oxford,
#   cambridge}, joined by veth pairs on a bridge in -core, all addresses in 10.99.0.0/16 on those
#   veths (no route anywhere else; unbound also refuses every name outside smarthost.internal).
#   The MTA's resolver is /etc/netns/she2e<pid>-mta/resolv.conf (bind-mounted by `ip netns exec`),
#   so the machine's /etc/resolv.conf is never touched. Postfix is a separate instance: its own
#   config_directory, queue_directory, data_directory and log under a temp dir, every service
#   unchrooted (so it reads the namespace's resolv.conf), no smtpd listener; mail is injected with
#   `sendmail -C DIR`. /etc/postfix is only read by the package's own tools, never changed.
#   A trap on EXIT stops everything started here by process id (never by name), deletes the nft
#   table, the namespaces, /etc/netns/<mta ns> and the work directory, also on failure.
#   Every wait is bounded in time; every loop in count.
#
# TIMING KNOBS AND WHY
#   smarthostd: zone ttl 2s (degraded_ttl defaults to half of it), probe interval 1s, timeout 1s,
#     rise 2, fall 2: a dead host is withdrawn within about interval + 2 timeouts.
#   unbound: cache-max-ttl 1, cache-max-negative-ttl 1, no prefetch, no serve-expired.
#   Postfix: smtp_connect_timeout 2s and smtp_helo_timeout 2s (a blackholed or hung host costs
#     2 s per try), other SMTP-client timeouts 5s, queue_run_delay 1s, minimal_backoff_time 1s,
#     maximal_backoff_time 2s. smtp_connection_cache_on_demand = no (and no
#     smtp_connection_cache_destinations): with a backlog for one nexthop Postfix would otherwise
#     park sessions in scache and hand later deliveries a cached session by nexthop name, with no
#     new MX lookup, e.g. keep relaying to cambridge after oxford is back (up to
#     smtp_connection_reuse_time_limit, 300 s), or reuse a session to a now-hung host. Without
#     it every delivery looks up the MX and connects afresh, so the log shows, per delivery, what
#     the DNS answer made it do.
#   Slack after withdrawal during which attempts to the withdrawn hosts are still tolerated:
#     (cache-max-ttl 1 s + 1 s, as unbound expires entries on whole seconds)
#     + 2 x the per-try timeout of the mode (a delivery that looked the MX up just before the
#       change still tries both oxford hosts, one after the other: 0 s killed, 2 s blackholed
#       via smtp_connect_timeout, 2 s hung via smtp_helo_timeout)
#     + 1 s for scheduling,
#   i.e. 3 s killed, 7 s blackholed and hung. Postfix stamps its log to the second, so a log line
#   counts as "after" only from the first whole second at or after withdrawal + slack. The SYN
#   counter is read exactly at that moment and again when the phase is over.

set -Eeuo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
HERE="$(dirname "$SELF")"
REPO="$(cd "$HERE/../.." && pwd)"
SYS_PY=/usr/bin/python3   # Debian's, with python3-aiosmtpd (not a pyenv one on PATH)

N="${E2E_MESSAGES:-200}"
MODE=all
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^$/p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
    killed|blackholed|hung|static-control|all) MODE="$1"; shift ;;
    *) echo "usage: $0 [-n N] [killed|blackholed|hung|static-control|all]" >&2; exit 2 ;;
  esac
done
case "$N" in ''|*[!0-9]*) echo "N must be a number, got '$N'" >&2; exit 2 ;; esac
if [ "$N" -lt 200 ] && [ "${E2E_ALLOW_SMALL:-0}" != 1 ]; then
  echo "N must be at least 200 (set E2E_ALLOW_SMALL=1 for a quick try)" >&2; exit 2
fi
if [ "$N" -lt 2 ]; then echo "N must be at least 2" >&2; exit 2; fi

SMARTHOSTD_BIN="${SMARTHOSTD_BIN:-$REPO/target/release/smarthostd}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%3N)" "$*"; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
# Float arithmetic: calc 'expression'
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------
ensure_packages() {
  local missing=()
  [ -x /usr/sbin/postfix ] && [ -x /usr/sbin/postconf ] || missing+=(postfix)
  [ -x /usr/sbin/unbound ] || missing+=(unbound)
  [ -x "$SYS_PY" ] && "$SYS_PY" -c 'import aiosmtpd' 2>/dev/null || missing+=(python3-aiosmtpd)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v nft >/dev/null || missing+=(nftables)
  command -v dig >/dev/null || missing+=(dnsutils)
  command -v curl >/dev/null || missing+=(curl)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing missing packages: ${missing[*]}"
  # Deny service starts while installing (the standard Debian mechanism), unless a policy is
  # already in place: the system's postfix and unbound must not start.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; made_policy=1
  fi
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  local rc=0
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      postfix unbound python3-aiosmtpd iproute2 nftables dnsutils curl; } || rc=$?
  [ "$made_policy" = 1 ] && rm -f "$policy"
  [ "$rc" = 0 ] || die "apt-get install failed ($rc)"
}

# ---------------------------------------------------------------------------------------------
# "all": each mode is its own run, in its own process (own namespaces, own trap).
# ---------------------------------------------------------------------------------------------
if [ "$MODE" = all ]; then
  [ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
  ensure_packages
  start=$(date +%s)
  pass=0 fail=0 failed=()
  export E2E_SUMMARY_FILE
  E2E_SUMMARY_FILE="$(mktemp "${TMPDIR:-/tmp}/she2e-summary.XXXXXX")"
  for m in killed blackholed hung static-control; do
    if bash "$SELF" -n "$N" "$m"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed+=("$m"); fi
  done
  echo
  cat "$E2E_SUMMARY_FILE" 2>/dev/null || true
  rm -f "$E2E_SUMMARY_FILE"
  log "all modes done in $(( $(date +%s) - start )) s${failed:+; failed: ${failed[*]}}"
  echo "mta-failover: $pass passed, $fail failed"
  [ "$fail" = 0 ]
  exit $?
fi

# ---------------------------------------------------------------------------------------------
# One mode
# ---------------------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
ensure_packages
[ -x "$SMARTHOSTD_BIN" ] || die "smarthostd binary not found at $SMARTHOSTD_BIN (set SMARTHOSTD_BIN)"
SMARTHOSTD_BIN="$(readlink -f "$SMARTHOSTD_BIN")"

RUN_START=$(now)
ID="she2e$$"
NS_CORE="$ID-core" NS_DNS="$ID-dns" NS_MTA="$ID-mta" NS_OX="$ID-oxford" NS_CAM="$ID-cambridge"
ALL_NS=("$NS_CORE" "$NS_DNS" "$NS_MTA" "$NS_OX" "$NS_CAM")
NETNS_ETC="/etc/netns/$NS_MTA"

IP_SHD=10.99.0.53      # smarthostd (authoritative)
IP_UNBOUND=10.99.0.10  # the site's recursive resolver
IP_MTA=10.99.0.25
declare -A HOST_IP=([oxford-mail1]=10.99.1.11 [oxford-mail2]=10.99.1.12
                    [cambridge-mail1]=10.99.2.21 [cambridge-mail2]=10.99.2.22)
declare -A HOST_NS=([oxford-mail1]=$NS_OX [oxford-mail2]=$NS_OX
                    [cambridge-mail1]=$NS_CAM [cambridge-mail2]=$NS_CAM)
OX_HOSTS=(oxford-mail1 oxford-mail2)
OX_IPS=("${HOST_IP[oxford-mail1]}" "${HOST_IP[oxford-mail2]}")

CACHE_MAX_TTL=1
CONNECT_TIMEOUT=2
HELO_TIMEOUT=2
# FAILURE: how the oxford hosts go down; STATIC=1: the resolver serves a frozen answer (control)
FAILURE="$MODE" STATIC=0
[ "$MODE" = static-control ] && FAILURE=killed STATIC=1
case "$FAILURE" in
  killed) TRY_TIMEOUT=0 ;;
  blackholed) TRY_TIMEOUT=$CONNECT_TIMEOUT ;;
  hung) TRY_TIMEOUT=$HELO_TIMEOUT ;;
esac
SLACK=$(( CACHE_MAX_TTL + 1 + 2 * TRY_TIMEOUT + 1 ))
DELIVERY_TIMEOUT=${E2E_DELIVERY_TIMEOUT:-150}   # seconds for one phase's mail to be delivered
CHANGE_TIMEOUT=30                               # seconds for smarthostd to change its answer

W="" PFX="" PFX_ETC="" MAILLOG="" SINKS=""
declare -A SINK_PID=()
PID_SHD="" PID_UNBOUND="" PID_MASTER=""
NS_MADE=()
MADE_ETC_NETNS=0
FAILED=0

stop_pid() { # stop_pid PID NAME: TERM, wait up to 10 s, then KILL
  local pid="$1" name="$2" i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "cleanup: $name ($pid) ignored SIGTERM, killing"; kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +eu
  trap - EXIT INT TERM
  if [ "$rc" != 0 ] || [ "$FAILED" != 0 ]; then
    log "--- failure context ($MODE) ---"
    [ -f "$W/smarthostd.log" ] && { echo "smarthostd log (tail):"; tail -n 30 "$W/smarthostd.log"; }
    [ -f "$W/unbound.log" ] && { echo "unbound log (tail):"; tail -n 15 "$W/unbound.log"; }
    [ -f "$MAILLOG" ] && { echo "postfix log (tail):"; tail -n 30 "$MAILLOG"; }
    [ -n "$PID_MASTER" ] && { echo "postqueue -p:"; postqueue -c "$PFX_ETC" -p 2>&1 | tail -n 20; }
  fi
  stop_pid "$PID_MASTER" "postfix master"
  stop_pid "$PID_UNBOUND" unbound
  stop_pid "$PID_SHD" smarthostd
  local h
  for h in "${!SINK_PID[@]}"; do stop_pid "${SINK_PID[$h]}" "sink $h"; done
  ip netns exec "$NS_OX" nft delete table inet she2e 2>/dev/null
  local ns
  for ns in "${NS_MADE[@]}"; do ip netns del "$ns" 2>/dev/null || log "cleanup: could not delete netns $ns"; done
  rm -rf "$NETNS_ETC"
  [ "$MADE_ETC_NETNS" = 1 ] && rmdir /etc/netns 2>/dev/null   # made for this run, and now empty
  if [ -n "$W" ]; then
    if [ "${E2E_KEEP:-0}" = 1 ]; then log "work directory kept: $W"; else rm -rf "$W"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

W="$(mktemp -d "${TMPDIR:-/tmp}/smarthost-e2e-$MODE.XXXXXX")"
chmod 755 "$W"
# Postfix daemons run as the postfix user and must be able to reach the queue under $W.
runuser -u postfix -- test -x "$W" \
  || die "the postfix user cannot enter $W: set TMPDIR to a world-traversable directory"
PFX="$W/postfix"; PFX_ETC="$PFX/etc"; MAILLOG="$PFX/maillog"
SINKS="$W/sinks"

check() { # check CONDITION-STATUS MESSAGE: record a failed assertion, go on
  if [ "$1" != 0 ]; then log "ASSERTION FAILED: $2"; FAILED=1; else log "ok: $2"; fi
}
assert() { # assert MESSAGE -- COMMAND...
  local msg="$1"; shift; [ "$1" = -- ] && shift
  if "$@"; then check 0 "$msg"; else check 1 "$msg"; fi
}

# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------
setup_network() {
  local ns
  for ns in "${ALL_NS[@]}"; do
    ip netns list | awk '{print $1}' | grep -qx "$ns" && die "netns $ns already exists"
  done
  for ns in "${ALL_NS[@]}"; do
    ip netns add "$ns"; NS_MADE+=("$ns")
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
  done
  ip -n "$NS_CORE" link add br0 type bridge
  ip -n "$NS_CORE" link set br0 up
  local role
  for role in dns mta oxford cambridge; do
    ns="$ID-$role"
    ip -n "$NS_CORE" link add "v-$role" type veth peer name eth0 netns "$ns"
    ip -n "$NS_CORE" link set "v-$role" master br0 up
    ip -n "$ns" link set eth0 up
  done
  ip -n "$NS_DNS" addr add "$IP_SHD/16" dev eth0
  ip -n "$NS_DNS" addr add "$IP_UNBOUND/16" dev eth0
  ip -n "$NS_MTA" addr add "$IP_MTA/16" dev eth0
  local h
  for h in "${!HOST_IP[@]}"; do ip -n "${HOST_NS[$h]}" addr add "${HOST_IP[$h]}/16" dev eth0; done

  # In the oxford namespace: a set of blackholed addresses, and a counter of the connection
  # attempts (SYN packets, retransmits included) the MTA makes to the oxford relays.
  ip netns exec "$NS_OX" nft -f - <<EOF
table inet she2e {
  counter mta_syn { }
  set blackholed { type ipv4_addr; }
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr $IP_MTA tcp dport 25 tcp flags & (syn | ack) == syn counter name "mta_syn"
    ip daddr @blackholed tcp dport 25 drop
  }
}
EOF
}

# tcp_reachable NS ADDR PORT: one bounded TCP connect from inside NS
tcp_reachable() {
  ip netns exec "$1" timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$2" "$3" 2>/dev/null
}

syn_count() {
  ip netns exec "$NS_OX" nft list counter inet she2e mta_syn | awk '/packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }'
}

# ---------------------------------------------------------------------------------------------
# SMTP sinks
# ---------------------------------------------------------------------------------------------
start_sink() {
  local h="$1" dir="$SINKS/$1" i
  mkdir -p "$dir"; rm -f "$dir/ready"
  local name="${h#*-}.${h%%-*}.smarthost.internal"
  ip netns exec "${HOST_NS[$h]}" "$SYS_PY" "$HERE/smtp_sink.py" --listen "${HOST_IP[$h]}:25" \
    --dir "$dir" --name "$name" >>"$dir/sink.log" 2>&1 &
  SINK_PID[$h]=$!
  for ((i = 0; i < 100; i++)); do [ -f "$dir/ready" ] && return 0; sleep 0.1; done
  die "sink $h did not start (see $dir/sink.log)"
}

# ---------------------------------------------------------------------------------------------
# smarthostd and unbound
# ---------------------------------------------------------------------------------------------
start_smarthostd() {
  mkdir -p "$W/smarthostd"
  cat > "$W/smarthostd/smarthost.internal.zone" <<EOF
\$ORIGIN smarthost.internal.
\$TTL 30
@   IN SOA ns1.smarthost.internal. hostmaster.smarthost.internal. ( 1 3600 600 86400 2 )
@   IN NS  ns1.smarthost.internal.
ns1 IN A   $IP_SHD
EOF
  cat > "$W/smarthostd/smarthost.toml" <<EOF
[server]
listen = ["$IP_SHD:53"]
admin = "127.0.0.1:8053"

[zone]
origin = "smarthost.internal"
file = "smarthost.internal.zone"
ttl = "2s"

[probe]
interval = "1s"
timeout = "1s"
rise = 2
fall = 2
ehlo = "smarthostd.e2e.test"

[sites.oxford]
hosts = [ { name = "mail1", addresses = ["${HOST_IP[oxford-mail1]}"] },
          { name = "mail2", addresses = ["${HOST_IP[oxford-mail2]}"] } ]

[sites.cambridge]
hosts = [ { name = "mail1", addresses = ["${HOST_IP[cambridge-mail1]}"] },
          { name = "mail2", addresses = ["${HOST_IP[cambridge-mail2]}"] } ]
EOF
  "$SMARTHOSTD_BIN" check-config "$W/smarthostd/smarthost.toml" >"$W/check-config.log" 2>&1 \
    || { cat "$W/check-config.log"; die "smarthostd check-config failed"; }
  NO_COLOR=1 ip netns exec "$NS_DNS" "$SMARTHOSTD_BIN" serve --config "$W/smarthostd/smarthost.toml" \
    >"$W/smarthostd.log" 2>&1 &
  PID_SHD=$!
  local i
  for ((i = 0; i < 150; i++)); do
    kill -0 "$PID_SHD" 2>/dev/null || die "smarthostd exited (see log)"
    [ "$(ip netns exec "$NS_DNS" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8053/readyz 2>/dev/null)" = 200 ] && return 0
    sleep 0.1
  done
  die "smarthostd not ready within 15 s"
}

# For the static control only: the all-up answer, frozen into the resolver.
static_answer() {
  [ "$STATIC" = 1 ] || return 0
  local h
  for h in oxford-mail1 oxford-mail2; do
    echo "  local-data: \"oxford.smarthost.internal. 2 IN MX 10 ${h#*-}.oxford.smarthost.internal.\""
  done
  for h in cambridge-mail1 cambridge-mail2; do
    echo "  local-data: \"oxford.smarthost.internal. 2 IN MX 20 ${h#*-}.cambridge.smarthost.internal.\""
  done
  for h in "${!HOST_IP[@]}"; do
    echo "  local-data: \"${h#*-}.${h%%-*}.smarthost.internal. 2 IN A ${HOST_IP[$h]}\""
  done
}

start_unbound() {
  mkdir -p "$W/unbound"
  cat > "$W/unbound/unbound.conf" <<EOF
server:
  interface: $IP_UNBOUND
  port: 53
  do-ip4: yes
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$W/unbound"
  pidfile: "$W/unbound/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  access-control: 10.99.0.0/16 allow
  # No DNSSEC: smarthost.internal is a private name with no chain of trust.
  module-config: "iterator"
  domain-insecure: "smarthost.internal"
  private-domain: "smarthost.internal"
  # Low cache limits so answers follow smarthostd within a second or two.
  cache-max-ttl: $CACHE_MAX_TTL
  cache-max-negative-ttl: $CACHE_MAX_TTL
  cache-min-ttl: 0
  prefetch: no
  serve-expired: no
  # Only smarthost.internal is resolved; everything else is refused without leaving the host.
  local-zone: "." refuse
  local-zone: "smarthost.internal." transparent
$(static_answer)
stub-zone:
  name: "smarthost.internal"
  stub-addr: $IP_SHD
remote-control:
  control-enable: no
EOF
  unbound-checkconf "$W/unbound/unbound.conf" >/dev/null || die "unbound-checkconf failed"
  ip netns exec "$NS_DNS" unbound -d -c "$W/unbound/unbound.conf" >"$W/unbound.log" 2>&1 &
  PID_UNBOUND=$!
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$PID_UNBOUND" 2>/dev/null || die "unbound exited (see log)"
    ip netns exec "$NS_MTA" dig +time=1 +tries=1 @"$IP_UNBOUND" smarthost.internal SOA 2>/dev/null \
      | grep -q 'status: NOERROR' && return 0
    sleep 0.1
  done
  die "unbound not answering within 10 s"
}

# The oxford MX answer, one "pref exchange" per line, sorted; from the server given.
mx_answer() {
  ip netns exec "$NS_MTA" dig +short +time=1 +tries=1 @"$1" oxford.smarthost.internal MX 2>/dev/null | sort || true
}
is_withdrawn() { # answer lists no oxford host (and is not empty)
  [ -n "$1" ] && ! grep -q '\.oxford\.smarthost\.internal\.$' <<<"$1"
}
is_restored() { # answer lists both oxford hosts at preference 10
  grep -qx '10 mail1\.oxford\.smarthost\.internal\.' <<<"$1" && grep -qx '10 mail2\.oxford\.smarthost\.internal\.' <<<"$1"
}
is_full() { # both sites, both hosts, local at 10 and remote at 20
  is_restored "$1" && grep -qx '20 mail1\.cambridge\.smarthost\.internal\.' <<<"$1" \
    && grep -qx '20 mail2\.cambridge\.smarthost\.internal\.' <<<"$1"
}

# wait_answer PREDICATE SERVER TIMEOUT: prints the time the predicate first held, or fails
wait_answer() {
  local pred="$1" server="$2" limit="$3" deadline ans i
  deadline=$(calc "$(now) + $limit")
  for ((i = 0; i < limit * 20; i++)); do
    ans="$(mx_answer "$server")"
    if "$pred" "$ans"; then now; return 0; fi
    awk -v n="$(now)" -v d="$deadline" 'BEGIN { exit !(n > d) }' && break
    sleep 0.05
  done
  log "last answer from $server: $(tr '\n' ' ' <<<"$ans")"
  return 1
}

# ---------------------------------------------------------------------------------------------
# Postfix
# ---------------------------------------------------------------------------------------------
start_postfix() {
  mkdir -p "$PFX_ETC" "$PFX/queue" "$PFX/data"
  chown postfix "$PFX/data"
  [ -d /etc/netns ] || MADE_ETC_NETNS=1
  mkdir -p "$NETNS_ETC"
  printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$IP_UNBOUND" > "$NETNS_ETC/resolv.conf"
  # Every service unchrooted (5th column n), so the SMTP client reads the namespace's
  # resolv.conf; no smtpd (nothing listens), mail comes in through sendmail/pickup.
  cat > "$PFX_ETC/master.cf" <<'EOF'
# service type  private unpriv  chroot  wakeup  maxproc command
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  : > "$PFX_ETC/main.cf"
  postconf -c "$PFX_ETC" -e \
    "compatibility_level = 3.6" \
    "queue_directory = $PFX/queue" \
    "data_directory = $PFX/data" \
    "maillog_file = $MAILLOG" \
    "maillog_file_prefixes = $W" \
    "myhostname = mta.e2e.test" \
    "mydomain = e2e.test" \
    "myorigin = \$myhostname" \
    "mydestination =" \
    "alias_maps =" \
    "alias_database =" \
    "local_recipient_maps =" \
    "inet_interfaces = loopback-only" \
    "inet_protocols = ipv4" \
    "biff = no" \
    "relayhost = oxford.smarthost.internal" \
    "smtp_tls_security_level = none" \
    "smtp_randomize_addresses = yes" \
    "smtp_connect_timeout = ${CONNECT_TIMEOUT}s" \
    "smtp_helo_timeout = ${HELO_TIMEOUT}s" \
    "smtp_mail_timeout = 5s" \
    "smtp_rcpt_timeout = 5s" \
    "smtp_data_init_timeout = 5s" \
    "smtp_data_xfer_timeout = 5s" \
    "smtp_data_done_timeout = 5s" \
    "smtp_rset_timeout = 5s" \
    "smtp_quit_timeout = 5s" \
    "smtp_connection_cache_on_demand = no" \
    "smtp_connection_cache_destinations =" \
    "smtp_connection_reuse_time_limit = 1s" \
    "queue_run_delay = 1s" \
    "minimal_backoff_time = 1s" \
    "maximal_backoff_time = 2s"
  postfix -c "$PFX_ETC" check || die "postfix check failed (see $MAILLOG)"
  local master
  master="$(postconf -c "$PFX_ETC" -h daemon_directory)/master"
  ip netns exec "$NS_MTA" "$master" -c "$PFX_ETC" -d >"$PFX/master.out" 2>&1 &
  PID_MASTER=$!
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$PID_MASTER" 2>/dev/null || die "postfix master exited (see $MAILLOG)"
    [ -S "$PFX/queue/public/pickup" ] && postfix -c "$PFX_ETC" status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "postfix did not start within 10 s"
}

# send_batch PHASE FROM TO: messages tagged PHASE-FROM .. PHASE-TO through sendmail
send_batch() {
  ip netns exec "$NS_MTA" bash -c '
    set -e
    for i in $(seq "$3" "$4"); do
      tag=$(printf "%s-%05d" "$2" "$i")
      printf "From: sender@mta.e2e.test\nTo: rcpt@dest.e2e.test\nSubject: e2e %s\nX-E2E-Tag: %s\n\nmessage %s\n" \
        "$tag" "$tag" "$tag" | /usr/sbin/sendmail -C "$1" -f sender@mta.e2e.test -- rcpt@dest.e2e.test
    done' send "$PFX_ETC" "$1" "$2" "$3"
}

delivered() { "$SYS_PY" "$HERE/e2e_tools.py" delivered "$SINKS" "$1"; }
queue_empty() { postqueue -c "$PFX_ETC" -p 2>&1 | grep -q '^Mail queue is empty'; }

# wait_delivered PHASE COUNT: until COUNT messages of PHASE are stored and the queue is empty
wait_delivered() {
  local phase="$1" want="$2" i got=0 deadline
  deadline=$(( $(date +%s) + DELIVERY_TIMEOUT ))
  for ((i = 0; i < DELIVERY_TIMEOUT * 5; i++)); do
    got=$(delivered "$phase-")
    if [ "$got" -ge "$want" ] && queue_empty; then return 0; fi
    [ "$(date +%s)" -ge "$deadline" ] && break
    sleep 0.2
  done
  log "phase $phase: only $got of $want delivered after ${DELIVERY_TIMEOUT}s"
  postqueue -c "$PFX_ETC" -p | tail -n 5
  return 1
}

# phase_counts PHASE: sets C[host] for that phase
declare -A C=()
phase_counts() {
  local h n
  C=()
  while read -r h n; do C[$h]=$n; done < <("$SYS_PY" "$HERE/e2e_tools.py" counts "$SINKS" "$1-")
  for h in "${!HOST_IP[@]}"; do C[$h]=${C[$h]:-0}; done
  PC="oxford ${C[oxford-mail1]}+${C[oxford-mail2]}, cambridge ${C[cambridge-mail1]}+${C[cambridge-mail2]}"
  log "phase $1 deliveries (mail1+mail2): $PC"
}

# ---------------------------------------------------------------------------------------------
# Failure modes
# ---------------------------------------------------------------------------------------------
take_down() {
  local h
  case "$FAILURE" in
    killed)
      for h in "${OX_HOSTS[@]}"; do kill -KILL "${SINK_PID[$h]}"; done
      for h in "${OX_HOSTS[@]}"; do wait "${SINK_PID[$h]}" 2>/dev/null || true; unset "SINK_PID[$h]"; done ;;
    blackholed)
      ip netns exec "$NS_OX" nft add element inet she2e blackholed "{ ${OX_IPS[0]}, ${OX_IPS[1]} }" ;;
    hung)
      for h in "${OX_HOSTS[@]}"; do kill -STOP "${SINK_PID[$h]}"; done ;;
  esac
}

bring_back() {
  local h
  case "$FAILURE" in
    killed) for h in "${OX_HOSTS[@]}"; do start_sink "$h"; done ;;
    blackholed) ip netns exec "$NS_OX" nft flush set inet she2e blackholed ;;
    hung) for h in "${OX_HOSTS[@]}"; do kill -CONT "${SINK_PID[$h]}"; done ;;
  esac
}

postfix_log_count() { grep -c -- "$1" "$MAILLOG" 2>/dev/null || true; }

# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
log "mode=$MODE N=$N smarthostd=$SMARTHOSTD_BIN work=$W"
setup_network
for h in "${!HOST_IP[@]}"; do start_sink "$h"; done
for h in "${!HOST_IP[@]}"; do
  tcp_reachable "$NS_MTA" "${HOST_IP[$h]}" 25 || die "sink $h (${HOST_IP[$h]}:25) not reachable from the MTA namespace"
done
start_smarthostd
start_unbound
wait_answer is_full "$IP_UNBOUND" "$CHANGE_TIMEOUT" >/dev/null \
  || die "the resolver never showed the full oxford answer"
start_postfix
log "everything up in $(calc "$(now) - $RUN_START") s; oxford MX via unbound: $(mx_answer "$IP_UNBOUND" | tr '\n' ' ')"

# --- phase 1: baseline ------------------------------------------------------------------------
log "phase 1 (baseline): sending $N messages"
P1_START=$(now)
send_batch p1 1 "$N"
wait_delivered p1 "$N" || die "phase 1: not all mail delivered"
phase_counts p1
P1C=$PC
log "phase 1 took $(calc "$(now) - $P1_START") s"
check $(( C[oxford-mail1] + C[oxford-mail2] == N ? 0 : 1 )) "phase 1: all $N at oxford"
check $(( C[oxford-mail1] > 0 && C[oxford-mail2] > 0 ? 0 : 1 )) "phase 1: both oxford hosts got mail"
check $(( C[cambridge-mail1] + C[cambridge-mail2] == 0 ? 0 : 1 )) "phase 1: none at cambridge"

# --- phase 2: failover ------------------------------------------------------------------------
HALF=$(( N / 2 ))
SYN_BEFORE=$(syn_count)
log "phase 2 (failover): taking both oxford hosts down ($FAILURE), sending $HALF messages at once"
LOG_OFF_OUT=$(stat -c %s "$MAILLOG")
T_OUT=$(now)
take_down
send_batch p2 1 "$HALF" >"$W/send-p2a.log" 2>&1 &
SEND_PID=$!
T_WD=$(wait_answer is_withdrawn "$IP_SHD" "$CHANGE_TIMEOUT") || die "smarthostd never withdrew the oxford hosts"
if [ "$STATIC" = 1 ]; then
  T_WD_RES=$T_WD   # the frozen resolver never follows; nothing to wait for
else
  T_WD_RES=$(wait_answer is_withdrawn "$IP_UNBOUND" "$CHANGE_TIMEOUT") || die "the resolver never showed the withdrawal"
fi
log "smarthostd withdrew oxford $(calc "$T_WD - $T_OUT") s after the outage;" \
    "$([ "$STATIC" = 1 ] && echo "the resolver is frozen (control)" || echo "the resolver followed $(calc "$T_WD_RES - $T_WD") s later");" \
    "answer: $(mx_answer "$IP_SHD" | tr '\n' ' ')"
wait "$SEND_PID" || die "sending the first half of phase 2 failed: $(cat "$W/send-p2a.log")"
B=$(calc "$T_WD + $SLACK")
sleep "$(awk -v b="$B" -v n="$(now)" 'BEGIN { d = b - n; printf "%.3f", (d > 0 ? d : 0) }')"
SYN_AT_B=$(syn_count)
log "withdrawal + ${SLACK}s slack reached; sending the other $(( N - HALF )) messages"
send_batch p2 $(( HALF + 1 )) "$N"
wait_delivered p2 "$N" || die "phase 2: not all mail delivered"
SYN_END=$(syn_count)
LOG_OFF_END=$(stat -c %s "$MAILLOG")
phase_counts p2
P2C=$PC
T_FIRST_REMOTE=$("$SYS_PY" "$HERE/e2e_tools.py" first "$SINKS" cambridge p2- "$T_OUT")
read -r ATT_AFTER ATT_BEFORE < <("$SYS_PY" "$HERE/e2e_tools.py" attempts "$MAILLOG" "$LOG_OFF_OUT" "$LOG_OFF_END" "$B" "${OX_IPS[@]}" 2>"$W/attempts-after.txt")
log "phase 2: first delivery at cambridge $(calc "$T_FIRST_REMOTE - $T_OUT") s after the outage"
log "phase 2: MTA attempts to oxford hosts (Postfix log lines): $ATT_BEFORE outage..withdrawal+slack, $ATT_AFTER after"
log "phase 2: SYNs from the MTA to oxford: $(( SYN_AT_B - SYN_BEFORE )) outage..withdrawal+slack, $(( SYN_END - SYN_AT_B )) after"
[ "$ATT_AFTER" = 0 ] || { echo "first of them:"; head -n 5 "$W/attempts-after.txt"; }
check $(( C[cambridge-mail1] + C[cambridge-mail2] == N ? 0 : 1 )) "phase 2: all $N at cambridge"
check $(( C[cambridge-mail1] > 0 && C[cambridge-mail2] > 0 ? 0 : 1 )) "phase 2: both cambridge hosts got mail"
check $(( C[oxford-mail1] + C[oxford-mail2] == 0 ? 0 : 1 )) "phase 2: none at oxford"
if [ "$STATIC" = 1 ]; then
  check $(( ATT_AFTER > 0 ? 0 : 1 )) "control: with a static zone the MTA still tried oxford after withdrawal + ${SLACK}s (log)"
  check $(( SYN_END - SYN_AT_B > 0 ? 0 : 1 )) "control: with a static zone the MTA still sent SYNs to oxford after withdrawal + ${SLACK}s"
else
  check $(( ATT_AFTER == 0 ? 0 : 1 )) "phase 2: no MTA connection attempt to oxford logged after withdrawal + ${SLACK}s"
  check $(( SYN_END - SYN_AT_B == 0 ? 0 : 1 )) "phase 2: no SYN from the MTA to oxford after withdrawal + ${SLACK}s"
fi

# --- phase 3: failback ------------------------------------------------------------------------
log "phase 3 (failback): bringing the oxford hosts back"
T_BACK=$(now)
bring_back
T_RS=$(wait_answer is_restored "$IP_SHD" "$CHANGE_TIMEOUT") || die "smarthostd never listed the oxford hosts again"
T_RS_RES=$(wait_answer is_restored "$IP_UNBOUND" "$CHANGE_TIMEOUT") || die "the resolver never showed oxford again"
log "smarthostd listed oxford again $(calc "$T_RS - $T_BACK") s after recovery; the resolver followed $(calc "$T_RS_RES - $T_RS") s later"
log "phase 3: sending $N messages"
T_P3=$(now)
send_batch p3 1 "$N"
wait_delivered p3 "$N" || die "phase 3: not all mail delivered"
phase_counts p3
P3C=$PC
T_FIRST_LOCAL=$("$SYS_PY" "$HERE/e2e_tools.py" first "$SINKS" oxford p3- "$T_P3")
check $(( C[oxford-mail1] + C[oxford-mail2] == N ? 0 : 1 )) "phase 3: all $N back at oxford"
check $(( C[oxford-mail1] > 0 && C[oxford-mail2] > 0 ? 0 : 1 )) "phase 3: both oxford hosts got mail"
check $(( C[cambridge-mail1] + C[cambridge-mail2] == 0 ? 0 : 1 )) "phase 3: none at cambridge"

# --- whole run --------------------------------------------------------------------------------
AUDIT=$("$SYS_PY" "$HERE/e2e_tools.py" audit "$SINKS" $(( 3 * N ))) && a=0 || a=$?
log "sinks: $AUDIT"
check "$a" "every message stored exactly once, no bounce message at a sink"
assert "queue empty (postqueue -p)" -- queue_empty
BOUNCED=$(postfix_log_count 'status=bounced')
EXPIRED=$(postfix_log_count 'status=expired')
DEFERRED=$(postfix_log_count 'status=deferred')
SENT=$(postfix_log_count 'status=sent')
PANIC=$(grep -cE 'postfix/[a-z-]+\[[0-9]+\]: (fatal|panic):' "$MAILLOG" || true)
log "postfix log: sent=$SENT bounced=$BOUNCED expired=$EXPIRED deferred=$DEFERRED fatal/panic=$PANIC"
check $(( BOUNCED + EXPIRED == 0 ? 0 : 1 )) "postfix bounced nothing"
check $(( SENT == 3 * N ? 0 : 1 )) "postfix logged $(( 3 * N )) deliveries (status=sent)"
check $(( PANIC == 0 ? 0 : 1 )) "postfix logged no fatal/panic"
kill -0 "$PID_SHD" 2>/dev/null && alive=0 || alive=1
check "$alive" "smarthostd still running"

ELAPSED=$(calc "$(now) - $RUN_START")
RESULT=PASS; [ "$FAILED" = 0 ] || RESULT=FAIL
SUMMARY="SUMMARY $MODE $RESULT: N=$N; baseline $P1C; failover $P2C; failback $P3C; withdrawn $(calc "$T_WD - $T_OUT")s after outage (resolver $([ "$STATIC" = 1 ] && echo frozen || echo "+$(calc "$T_WD_RES - $T_WD")s")), first cambridge delivery $(calc "$T_FIRST_REMOTE - $T_OUT")s after outage, attempts to oxford after withdrawal+${SLACK}s: log=$ATT_AFTER syn=$(( SYN_END - SYN_AT_B )) (before: log=$ATT_BEFORE syn=$(( SYN_AT_B - SYN_BEFORE ))), re-listed $(calc "$T_RS - $T_BACK")s after recovery, first in-site delivery $(calc "$T_FIRST_LOCAL - $T_P3")s after sending, run ${ELAPSED}s"
echo "$SUMMARY"
[ -n "${E2E_SUMMARY_FILE:-}" ] && echo "$SUMMARY" >> "$E2E_SUMMARY_FILE"
[ "$FAILED" = 0 ] || exit 1
exit 0
