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

# shellcheck source=lib.sh
. "$HERE/lib.sh"

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
e2e_layout "she2e$$"

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

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

e2e_workdir "$MODE"

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
