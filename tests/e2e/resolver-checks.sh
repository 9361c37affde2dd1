#!/usr/bin/env bash
# resolver-checks.sh: the resolver defaults deploy/GUIDE.md warns about, shown with the real
# resolvers in front of a real smarthostd (no MTA).
#
# WHAT IT CHECKS
#   1 BIND `forward first` (the default of a forward zone): while smarthostd does not answer,
#     BIND iterates from the root instead, so the private name reaches the root servers (here a
#     stand-in root server at 10.99.0.11, authoritative for "." with no "internal"), and BIND
#     caches the root's NXDOMAIN: still NXDOMAIN after smarthostd answers again. `forward only`:
#     nothing reaches the root, and the answer is right as soon as smarthostd is back.
#   2 BIND authoritative for a zone above the forward zone (here the root) without delegating
#     smarthost.internal in it: the forward zone is not used, the name is NXDOMAIN.
#   3 Validating resolvers answer SERVFAIL for the zone (no chain of trust under .internal; here
#     there is not even a root to ask): unbound with Debian's root trust anchor, PowerDNS Recursor
#     as shipped; and NOERROR with `domain-insecure` / `addNTA`.
#   4 Knot Resolver's cache floor: with cache.min_ttl left at its default (5 s) a withdrawal
#     reaches clients of kresd more than 2 s late (smarthostd's TTLs here are 2 s and 1 s); with
#     cache.min_ttl(0) within 1.5 s.
#   5 dnsmasq does not cache MX: two MX queries in a row both reach smarthostd (its query
#     counter), two A queries for a relay within its TTL only one.
#   6 DNS cookies with real clients: `dig +cookie` gets a server cookie that dig calls "good",
#     and presenting it again gets the same cookie back, "good"; `kdig +cookie` likewise; BIND as
#     a resolver sends cookies to smarthostd on its own and presents the server cookie it got,
#     which smarthostd counts as valid. A malformed ECS option (10.1.3.0/23, sent raw by dig) and
#     a malformed cookie (7 bytes, dig) get FORMERR.
#
# HOW TO RUN (as root): bash tests/e2e/resolver-checks.sh    (about 40 s; matrix.sh installs
#   the resolvers; this script installs whatever is missing the same way)
#   It ends with "resolver-checks: P passed, F failed" and exits non-zero on any failure.
#
# ISOLATION: as mta-failover.sh (lib.sh): namespaces, 10.99.0.0/16, an EXIT trap.

set -Eeuo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
HERE="$(dirname "$SELF")"
REPO="$(cd "$HERE/../.." && pwd)"
SYS_PY=/usr/bin/python3
SMARTHOSTD_BIN="${SMARTHOSTD_BIN:-$REPO/target/release/smarthostd}"
MODE=resolver-checks

# shellcheck source=lib.sh
. "$HERE/lib.sh"

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
ensure_packages
missing=()
[ -x /usr/sbin/named ] || missing+=(bind9)
[ -x /usr/sbin/kresd ] || missing+=(knot-resolver)
[ -x /usr/sbin/pdns_recursor ] || missing+=(pdns-recursor)
[ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
[ -f /usr/share/dns/root.key ] || missing+=(dns-root-data)
command -v kdig >/dev/null || missing+=(knot-dnsutils)
if [ ${#missing[@]} -gt 0 ]; then with_policy_rc_d apt_install "${missing[@]}" || die "apt-get install failed"; fi
[ -x "$SMARTHOSTD_BIN" ] || die "smarthostd binary not found at $SMARTHOSTD_BIN (set SMARTHOSTD_BIN)"
SMARTHOSTD_BIN="$(readlink -f "$SMARTHOSTD_BIN")"

e2e_layout "she2e$$"
IP_ROOT=10.99.0.11
PASS=0
check() { # as lib.sh's, and counts
  if [ "$1" != 0 ]; then log "ASSERTION FAILED: $2"; FAILED=$(( FAILED + 1 )); else log "ok: $2"; PASS=$(( PASS + 1 )); fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
e2e_workdir "$MODE"

setup_network
ip -n "$NS_DNS" addr add "$IP_ROOT/16" dev eth0
start_sinks
start_smarthostd 1

# status NAME TYPE: the resolver's rcode (or "timeout")
status() {
  local out
  out=$(ip netns exec "$NS_MTA" dig +time=3 +tries=1 @"$IP_UNBOUND" "$1" "$2" 2>&1 || true)
  sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$out" | grep . || echo timeout
}
stop_resolver() { local n; for n in "${!EXTRA_PID[@]}"; do [ "$n" = root ] && continue; stop_pid "${EXTRA_PID[$n]}" "$n"; unset "EXTRA_PID[$n]"; done; }
# silence / revive smarthostd (SIGSTOP: the process stays, nothing answers)
shd_silent() { kill -STOP "$PID_SHD"; }
shd_back() { kill -CONT "$PID_SHD"; }

# --- 1, 2: BIND ---------------------------------------------------------------------------------
R="$W/root"; mkdir -p "$R"
printf '$TTL 60\n. IN SOA a.root. h.root. ( 1 3600 600 86400 60 )\n. IN NS a.root.\na.root. IN A %s\n' "$IP_ROOT" > "$R/root.db"
cat > "$R/named.conf" <<CONF
options { directory "$R"; pid-file "$R/named.pid"; session-keyfile "$R/s.key"; managed-keys-directory "$R";
  listen-on { $IP_ROOT; }; listen-on-v6 { none; }; recursion no; allow-query { any; }; querylog yes; };
controls { };
zone "." { type primary; file "root.db"; };
CONF
ip netns exec "$NS_DNS" named -g -4 -c "$R/named.conf" > "$W/resolver-root.log" 2>&1 &
EXTRA_PID[root]=$!
root_queries() { grep -c 'query: .*smarthost\.internal' "$W/resolver-root.log" || true; }

B="$W/bind"; mkdir -p "$B"
printf '. NS a.root.\na.root. A %s\n' "$IP_ROOT" > "$B/hints"
start_bind() { # start_bind ROOT-STATEMENT FORWARD-MODE
  cat > "$B/named.conf" <<CONF
options { directory "$B"; pid-file "$B/named.pid"; session-keyfile "$B/s.key"; managed-keys-directory "$B";
  listen-on { $IP_UNBOUND; }; listen-on-v6 { none; }; recursion yes; allow-query { 10.99.0.0/16; };
  dnssec-validation no; max-cache-ttl 1; };
controls { };
$1
zone "smarthost.internal" { type forward; forward $2; forwarders { $IP_SHD; }; };
CONF
  named-checkconf "$B/named.conf" || die "named-checkconf failed"
  ip netns exec "$NS_DNS" named -g -4 -c "$B/named.conf" > "$W/resolver-bind.log" 2>&1 &
  EXTRA_PID[named]=$!
  local i
  for ((i = 0; i < 100; i++)); do   # up once it answers anything at all
    kill -0 "${EXTRA_PID[named]}" 2>/dev/null || die "named exited (see $W/resolver-bind.log)"
    ip netns exec "$NS_MTA" dig +time=1 +tries=1 @"$IP_UNBOUND" . SOA 2>/dev/null | grep -q 'status:' && return 0
    sleep 0.1
  done
  die "named not answering within 10 s"
}

for fwd in first only; do
  start_bind 'zone "." { type hint; file "hints"; };' "$fwd"
  q0=$(root_queries)
  shd_silent; sleep 2.5   # past the 1 s cache cap
  st_silent=$(status oxford.smarthost.internal MX)
  q1=$(root_queries)
  shd_back; sleep 1.5
  st_back=$(status oxford.smarthost.internal MX)
  log "BIND forward $fwd: smarthostd silent -> $st_silent, queries for the zone at the root: $(( q1 - q0 )); smarthostd back -> $st_back"
  if [ "$fwd" = first ]; then
    check $(( q1 > q0 ? 0 : 1 )) "forward first: the private name went to the root while smarthostd was silent"
    check $([ "$st_silent" = NXDOMAIN ] && [ "$st_back" = NXDOMAIN ] && echo 0 || echo 1) \
      "forward first: NXDOMAIN, still cached after smarthostd is back ($st_silent, $st_back)"
  else
    check $(( q1 == q0 ? 0 : 1 )) "forward only: nothing went to the root"
    check $([ "$st_back" = NOERROR ] && echo 0 || echo 1) "forward only: the right answer as soon as smarthostd is back ($st_silent, $st_back)"
  fi
  stop_resolver
done

printf '$TTL 60\n. IN SOA localhost. h.localhost. ( 1 3600 600 86400 60 )\n. IN NS localhost.\nlocalhost. IN A 127.0.0.1\n' > "$B/root.db"
start_bind 'zone "." { type primary; file "root.db"; };' only
st=$(status oxford.smarthost.internal MX)
check $([ "$st" = NXDOMAIN ] && echo 0 || echo 1) "a forward zone under an authoritative parent that does not delegate it is not used ($st)"
stop_resolver

# --- 3: validating resolvers --------------------------------------------------------------------
U="$W/unbound-v"; mkdir -p "$U"; cp /usr/share/dns/root.key "$U/root.key"
for insecure in no yes; do
  cat > "$U/unbound.conf" <<CONF
server:
  interface: $IP_UNBOUND
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$U"
  pidfile: "$U/unbound.pid"
  use-syslog: no
  logfile: ""
  access-control: 10.99.0.0/16 allow
  module-config: "validator iterator"
  trust-anchor-file: "$U/root.key"
  private-domain: "smarthost.internal"
  $([ "$insecure" = yes ] && echo 'domain-insecure: "smarthost.internal"')
stub-zone:
  name: "smarthost.internal"
  stub-addr: $IP_SHD
remote-control:
  control-enable: no
CONF
  ip netns exec "$NS_DNS" unbound -d -c "$U/unbound.conf" > "$W/resolver-unbound-v.log" 2>&1 &
  EXTRA_PID[unbound]=$!
  sleep 1
  st=$(status oxford.smarthost.internal MX)
  want=SERVFAIL; [ "$insecure" = yes ] && want=NOERROR
  check $([ "$st" = "$want" ] && echo 0 || echo 1) "unbound validating with Debian's root trust anchor, domain-insecure=$insecure: $st"
  stop_resolver
done

P="$W/pdns"; mkdir -p "$P"
for nta in no yes; do
  if [ "$nta" = yes ]; then echo 'addNTA("smarthost.internal", "served by smarthostd")' > "$P/config.lua"; else : > "$P/config.lua"; fi
  printf 'local-address=%s\nallow-from=10.99.0.0/16\nforward-zones=smarthost.internal=%s\nlua-config-file=%s\ndaemon=no\nwrite-pid=no\nsocket-dir=%s\n' \
    "$IP_UNBOUND" "$IP_SHD" "$P/config.lua" "$P" > "$P/recursor.conf"
  ip netns exec "$NS_DNS" pdns_recursor --config-dir="$P" > "$W/resolver-pdns.log" 2>&1 &
  EXTRA_PID[pdns_recursor]=$!
  sleep 1
  st=$(status oxford.smarthost.internal MX)
  want=SERVFAIL; [ "$nta" = yes ] && want=NOERROR
  check $([ "$st" = "$want" ] && echo 0 || echo 1) "PowerDNS Recursor with its defaults, addNTA=$nta: $st"
  stop_resolver
done

# --- 4: Knot Resolver's cache floor -------------------------------------------------------------
K="$W/kresd"; mkdir -p "$K"
for floor in default 0; do
  {
    echo "net.ipv6 = false"
    echo "net.listen('$IP_UNBOUND', 53, { kind = 'dns' })"
    echo "cache.open(10 * MB, 'lmdb://$K/cache-$floor')"
    [ "$floor" = 0 ] && echo "cache.min_ttl(0)"
    echo "trust_anchors.remove('.')"
    echo "for _, m in ipairs({'priming', 'detect_time_skew', 'detect_time_jump', 'ta_signal_query', 'ta_sentinel', 'ta_update'}) do pcall(modules.unload, m) end"
    echo "policy.add(policy.suffix(policy.STUB({'$IP_SHD'}), { todname('smarthost.internal.') }))"
    echo "policy.add(policy.all(policy.REFUSE))"
  } > "$K/config-$floor.lua"
  ip netns exec "$NS_DNS" kresd -n -c "$K/config-$floor.lua" "$K" > "$W/resolver-kresd.log" 2>&1 </dev/null &
  EXTRA_PID[kresd]=$!
  wait_resolver_up "${EXTRA_PID[kresd]}" kresd
  ANSWER_QTYPE=MX
  wait_answer is_full "$IP_UNBOUND" 10 >/dev/null || die "kresd never showed the full answer"
  take_down_at=$(now)
  FAILURE=killed take_down
  t_shd=$(wait_answer is_withdrawn "$IP_SHD" 30) || die "smarthostd never withdrew oxford"
  t_res=$(wait_answer is_withdrawn "$IP_UNBOUND" 30) || die "kresd never showed the withdrawal"
  lag=$(calc "$t_res - $t_shd")
  log "kresd cache.min_ttl=$floor: smarthostd withdrew oxford $(calc "$t_shd - $take_down_at") s after the kill, kresd showed it $lag s later"
  if [ "$floor" = default ]; then
    check $(awk -v l="$lag" 'BEGIN { exit !(l > 2) }' && echo 0 || echo 1) "kresd with its default cache.min_ttl (5 s) lags more than 2 s ($lag s)"
  else
    check $(awk -v l="$lag" 'BEGIN { exit !(l < 1.5) }' && echo 0 || echo 1) "kresd with cache.min_ttl(0) lags less than 1.5 s ($lag s)"
  fi
  FAILURE=killed bring_back
  wait_answer is_restored "$IP_SHD" 30 >/dev/null || die "smarthostd never listed oxford again"
  stop_resolver
done

# --- 5: dnsmasq and MX --------------------------------------------------------------------------
shd_queries() { # shd_queries QTYPE: smarthostd's count of answered queries of that type
  ip netns exec "$NS_DNS" curl -s "http://$(shd_admin 1)/metrics" \
    | awk -v t="$1" '/^smarthostd_dns_queries_total/ && index($0, "qtype=\"" t "\"") { n += $NF } END { print n + 0 }'
}
ip netns exec "$NS_DNS" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
  --user=nobody --pid-file="$W/dnsmasq.pid" --listen-address="$IP_UNBOUND" --bind-interfaces --port=53 \
  --server="/smarthost.internal/$IP_SHD" --log-facility=- > "$W/resolver-dnsmasq.log" 2>&1 &
EXTRA_PID[dnsmasq]=$!
wait_resolver_up "${EXTRA_PID[dnsmasq]}" dnsmasq
mx0=$(shd_queries MX); a0=$(shd_queries A)
ip netns exec "$NS_MTA" dig +short @"$IP_UNBOUND" oxford.smarthost.internal MX >/dev/null
ip netns exec "$NS_MTA" dig +short @"$IP_UNBOUND" oxford.smarthost.internal MX >/dev/null
ip netns exec "$NS_MTA" dig +short @"$IP_UNBOUND" mail1.oxford.smarthost.internal A >/dev/null
ip netns exec "$NS_MTA" dig +short @"$IP_UNBOUND" mail1.oxford.smarthost.internal A >/dev/null
mx1=$(shd_queries MX); a1=$(shd_queries A)
log "dnsmasq: 2 MX queries -> $(( mx1 - mx0 )) at smarthostd; 2 A queries -> $(( a1 - a0 ))"
check $(( mx1 - mx0 == 2 ? 0 : 1 )) "dnsmasq forwards every MX query (no MX cache)"
check $(( a1 - a0 == 1 ? 0 : 1 )) "dnsmasq caches A"
stop_resolver

# --- 6: DNS cookies with real clients ---------------------------------------------------------
shd_cookies() { # shd_cookies KIND: smarthostd's count of queries whose cookie was KIND
  ip netns exec "$NS_DNS" curl -s "http://$(shd_admin 1)/metrics" \
    | awk -v k="$1" 'index($0, "smarthostd_dns_cookies_total{cookie=\"" k "\"}") == 1 { n = $NF } END { print n + 0 }'
}
cookie_of() { sed -n 's/.*COOKIE: \([0-9A-Fa-f]*\).*/\1/p' | head -n 1 | tr 'A-F' 'a-f'; }
valid0=$(shd_cookies valid)
out=$(ip netns exec "$NS_MTA" dig +cookie +time=3 +tries=1 @"$IP_SHD" oxford.smarthost.internal MX 2>&1)
first=$(cookie_of <<<"$out")
check $([ ${#first} = 48 ] && grep -q "COOKIE: $first (good)" <<<"$out" && echo 0 || echo 1) \
  "dig +cookie: a 16-byte server cookie, which dig calls good ($first)"
out=$(ip netns exec "$NS_MTA" dig +cookie="$first" +time=3 +tries=1 @"$IP_SHD" oxford.smarthost.internal MX 2>&1)
check $(grep -q "COOKIE: $first (good)" <<<"$out" && grep -q 'status: NOERROR' <<<"$out" && echo 0 || echo 1) \
  "dig +cookie=<the server cookie>: the same cookie back, good"
out=$(ip netns exec "$NS_MTA" kdig +cookie +time=3 +retry=0 @"$IP_SHD" oxford.smarthost.internal MX 2>&1)
kfirst=$(cookie_of <<<"$out")
out=$(ip netns exec "$NS_MTA" kdig +cookie="$kfirst" +time=3 +retry=0 @"$IP_SHD" oxford.smarthost.internal MX 2>&1)
check $([ ${#kfirst} = 48 ] && [ "$(cookie_of <<<"$out")" = "$kfirst" ] && echo 0 || echo 1) \
  "kdig +cookie: a 16-byte server cookie, the same back when presented ($kfirst)"
valid1=$(shd_cookies valid)
check $(( valid1 - valid0 == 2 ? 0 : 1 )) "smarthostd counted the two cookies presented again as valid ($(( valid1 - valid0 )))"
start_bind 'zone "." { type hint; file "hints"; };' only
ip netns exec "$NS_MTA" dig +short @"$IP_UNBOUND" oxford.smarthost.internal MX >/dev/null
sleep 1.5   # past BIND's 1 s cache cap here: the second query goes to smarthostd again
ip netns exec "$NS_MTA" dig +short @"$IP_UNBOUND" cambridge.smarthost.internal MX >/dev/null
valid2=$(shd_cookies valid)
log "BIND as a resolver: $(( valid2 - valid1 )) queries to smarthostd with a valid server cookie"
check $(( valid2 > valid1 ? 0 : 1 )) "BIND as a resolver presents the server cookie smarthostd gave it"
stop_resolver
# dig and kdig clear the bits past the prefix of +subnet themselves: the option is sent raw.
out=$(ip netns exec "$NS_MTA" dig +ednsopt=8:000117000a0103 +time=3 +tries=1 @"$IP_SHD" smarthost.internal MX 2>&1)
check $(grep -q 'status: FORMERR' <<<"$out" && echo 0 || echo 1) \
  "an ECS option with a bit past its prefix (10.1.3.0/23, dig +ednsopt) gets FORMERR"
out=$(ip netns exec "$NS_MTA" dig +ednsopt=8:000117000a0102 +time=3 +tries=1 @"$IP_SHD" smarthost.internal MX 2>&1)
check $(grep -q 'status: NOERROR' <<<"$out" && grep -q 'CLIENT-SUBNET: 10.1.2.0/23/0' <<<"$out" && echo 0 || echo 1) \
  "the same subnet written right (10.1.2.0/23) is answered and echoed"
out=$(ip netns exec "$NS_MTA" dig +cookie=0123456789abcd +time=3 +tries=1 @"$IP_SHD" oxford.smarthost.internal MX 2>&1)
check $(grep -q 'status: FORMERR' <<<"$out" && echo 0 || echo 1) "a 7-byte cookie (dig) gets FORMERR"

[ "$FAILED" = 0 ] && log "all resolver checks passed" || log "$FAILED resolver check(s) failed"
echo "resolver-checks: $PASS passed, $FAILED failed"
[ "$FAILED" = 0 ]
