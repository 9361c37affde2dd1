# lib.sh: shared helpers of the end-to-end scripts (mta-failover.sh, matrix.sh). Sourced, not
# run. The caller sets HERE (this folder), SYS_PY, SMARTHOSTD_BIN and MODE before sourcing, then
# calls e2e_layout ID and e2e_workdir; everything here works on the globals those set.
#
# Layout (all in 10.99.0.0/16, on veths in namespaces made here, no route anywhere else):
#   <ID>-core       a bridge joining the others
#   <ID>-dns        smarthostd 10.99.0.53 (a second instance, when asked for, 10.99.0.54) and the
#                   site's recursive resolver 10.99.0.10
#   <ID>-mta        the MTA, 10.99.0.25; its resolv.conf is /etc/netns/<ID>-mta/resolv.conf
#   <ID>-oxford     oxford's relays (SMTP sinks) 10.99.1.11, 10.99.1.12, and an nftables table
#                   counting the MTA's SYNs to them (and blackholing them on demand)
#   <ID>-cambridge  cambridge's relays 10.99.2.21, 10.99.2.22
#   <ID>-secondary  when SECONDARY=1: a secondary name server 10.99.0.52 (matrix.sh runs Knot
#                   there), taking the zone from smarthostd by transfer; it is then the zone's
#                   only NS and the resolver's only stub address (smarthostd a hidden primary)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%3N)" "$*"; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
# Float arithmetic: calc 'expression'
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
# sleep_until UNIX-TIME
sleep_until() { sleep "$(awk -v b="$1" -v n="$(now)" 'BEGIN { d = b - n; printf "%.3f", (d > 0 ? d : 0) }')"; }

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------
# with_policy_rc_d COMMAND...: run with service starts denied (the standard Debian mechanism),
# unless a policy is already in place: no system MTA or resolver may start.
with_policy_rc_d() {
  local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; made_policy=1
  fi
  "$@" || rc=$?
  [ "$made_policy" = 1 ] && rm -f "$policy"
  return "$rc"
}

apt_install() { # apt_install PACKAGE...: installs them (apt-get update first, once per process)
  log "installing missing packages: $*"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  if [ "${APT_UPDATED:-0}" != 1 ]; then apt-get update -q >/dev/null || return 1; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

ensure_packages() {
  local missing=()
  [ -x /usr/sbin/postfix ] && [ -x /usr/sbin/postconf ] || missing+=(postfix)
  [ -x /usr/sbin/unbound ] || missing+=(unbound)
  [ -x "$SYS_PY" ] && "$SYS_PY" -c 'import aiosmtpd' 2>/dev/null || missing+=(python3-aiosmtpd)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v nft >/dev/null || missing+=(nftables)
  command -v dig >/dev/null || missing+=(dnsutils)
  command -v curl >/dev/null || missing+=(curl)
  command -v openssl >/dev/null || missing+=(openssl)
  [ ${#missing[@]} -eq 0 ] && return 0
  with_policy_rc_d apt_install "${missing[@]}" || die "apt-get install failed"
}

# Exim and OpenSMTPD conflict with Postfix as packages: their .debs are unpacked here, not installed.
MTA_ROOT="${E2E_MTA_ROOT:-/var/cache/smarthost-e2e/mta-root}"
EXIM="$MTA_ROOT/usr/sbin/exim4"
SMTPD="$MTA_ROOT/usr/sbin/smtpd"

# ensure_unpacked_mtas: Exim's and OpenSMTPD's libraries installed (apt-get, service starts
# denied), their binaries unpacked under MTA_ROOT, and the users they need (matrix.sh, dane.sh).
ensure_unpacked_mtas() {
  local missing=()
  # Exim's and OpenSMTPD's shared libraries (their Depends, less what conflicts with Postfix)
  local lib
  for lib in libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libnsl2 libpcre2-8-0 \
             libcrypt1 libevent-2.1-7 libssl3 zlib1g libpam0g; do
    dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q 'install ok installed' || missing+=("$lib")
  done
  if [ ${#missing[@]} -gt 0 ]; then with_policy_rc_d apt_install "${missing[@]}" || die "apt-get install failed"; fi
  if [ ! -x "$EXIM" ] || [ ! -x "$SMTPD" ]; then
    log "unpacking exim4-daemon-light and opensmtpd under $MTA_ROOT"
    local dl
    dl="$(mktemp -d)"
    getent passwd _apt >/dev/null && chown _apt "$dl"   # apt-get download fetches as _apt
    if [ "${APT_UPDATED:-0}" != 1 ]; then apt-get update -q >/dev/null || die "apt-get update failed"; APT_UPDATED=1; fi
    (cd "$dl" && apt-get download -q exim4-daemon-light opensmtpd >/dev/null) || { rm -rf "$dl"; die "apt-get download failed"; }
    mkdir -p "$MTA_ROOT"
    local deb
    for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$MTA_ROOT"; done
    rm -rf "$dl"
    [ -x "$EXIM" ] && [ -x "$SMTPD" ] || die "unpacked MTAs not found under $MTA_ROOT"
  fi
  # Debian's Exim looks its compiled-in user up by name at start; OpenSMTPD drops privileges to
  # opensmtpd and opensmtpq. The packages' postinst scripts create these; so does this.
  getent passwd Debian-exim >/dev/null || useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin Debian-exim
  getent passwd opensmtpd >/dev/null || useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin opensmtpd
  getent passwd opensmtpq >/dev/null || useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin opensmtpq
  # smtpctl talks to the queue as group opensmtpq (the package sets this with dpkg-statoverride)
  chgrp opensmtpq "$MTA_ROOT/usr/sbin/smtpctl" && chmod 2555 "$MTA_ROOT/usr/sbin/smtpctl"
  return 0
}

# ---------------------------------------------------------------------------------------------
# Layout, work directory, cleanup
# ---------------------------------------------------------------------------------------------
e2e_layout() { # e2e_layout ID
  ID="$1"
  NS_CORE="$ID-core" NS_DNS="$ID-dns" NS_MTA="$ID-mta" NS_OX="$ID-oxford" NS_CAM="$ID-cambridge"
  ALL_NS=("$NS_CORE" "$NS_DNS" "$NS_MTA" "$NS_OX" "$NS_CAM")
  NETNS_ETC="/etc/netns/$NS_MTA"
  IP_SHD=10.99.0.53      # smarthostd (authoritative)
  IP_SHD2=10.99.0.54     # a second smarthostd, when SHD_IPS lists it
  IP_UNBOUND=10.99.0.10  # the site's recursive resolver (unbound, or the cell's resolver)
  IP_MTA=10.99.0.25
  SHD_IPS=("$IP_SHD")    # smarthostd's addresses; the zone's name servers (NS records, the
                         # resolver's stub/forward list) unless SECONDARY=1 (zone_ns_ips)
  NS_SEC="$ID-secondary"
  IP_SEC=10.99.0.52      # the secondary, when SECONDARY=1
  SECONDARY=0            # 1: smarthostd a hidden primary ([transfer], TSIG key $W/tsig-secret)
  declare -gA HOST_IP=([oxford-mail1]=10.99.1.11 [oxford-mail2]=10.99.1.12
                       [cambridge-mail1]=10.99.2.21 [cambridge-mail2]=10.99.2.22)
  declare -gA HOST_NS=([oxford-mail1]=$NS_OX [oxford-mail2]=$NS_OX
                       [cambridge-mail1]=$NS_CAM [cambridge-mail2]=$NS_CAM)
  OX_HOSTS=(oxford-mail1 oxford-mail2)
  OX_IPS=("${HOST_IP[oxford-mail1]}" "${HOST_IP[oxford-mail2]}")
  CAM_IPS=("${HOST_IP[cambridge-mail1]}" "${HOST_IP[cambridge-mail2]}")

  W="" PFX="" PFX_ETC="" MAILLOG="" SINKS=""
  declare -gA SINK_PID=()
  declare -gA SINK_TLS=()         # host -> "CERT KEY": its sink offers STARTTLS with them (dane.sh)
  declare -gA HOST_PIN=()         # host -> more keys of its smarthostd host entry (", tls_key = ...")
  RESOLV_OPTIONS=""               # more resolv.conf options for the MTA (dane.sh: trust-ad)
  POSTFIX_EXTRA=()                # more main.cf settings (dane.sh: DNSSEC, TLS logging)
  SMTP_TLS_LEVEL=none             # Postfix's smtp_tls_security_level (dane.sh: dane)
  declare -gA SHD_PID=()          # smarthostd instance number -> pid
  declare -gA EXTRA_PID=()        # name -> pid of anything else started (resolvers, MTAs)
  PID_SHD="" PID_UNBOUND="" PID_MASTER=""
  NS_MADE=()
  MADE_ETC_NETNS=0
  FAILED=0
  ANSWER_QTYPE=MX                 # what the MTA asks for: MX, or A for A-only MTAs
  STATIC=0
  SHD_DNSSEC=0                    # 1: [dnssec], one key shared by every instance ($W/keys)
}

e2e_workdir() { # e2e_workdir NAME: makes $W and the paths under it
  W="$(mktemp -d "${TMPDIR:-/tmp}/smarthost-e2e-$1.XXXXXX")"
  chmod 755 "$W"
  # Postfix daemons run as the postfix user and must be able to reach the queue under $W.
  runuser -u postfix -- test -x "$W" \
    || die "the postfix user cannot enter $W: set TMPDIR to a world-traversable directory"
  PFX="$W/postfix"; PFX_ETC="$PFX/etc"; MAILLOG="$PFX/maillog"
  SINKS="$W/sinks"
}

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

# Hooks a script may redefine: failure context and stopping of its MTA.
mta_failure_context() {
  [ -f "$MAILLOG" ] && { echo "postfix log (tail):"; tail -n 30 "$MAILLOG"; }
  [ -n "$PID_MASTER" ] && { echo "postqueue -p:"; postqueue -c "$PFX_ETC" -p 2>&1 | tail -n 20; }
}
mta_stop() { stop_pid "$PID_MASTER" "postfix master"; }

cleanup() {
  local rc=$?
  set +eu
  trap - EXIT INT TERM
  if [ "$rc" != 0 ] || [ "$FAILED" != 0 ]; then
    log "--- failure context ($MODE) ---"
    local f
    for f in "$W"/smarthostd*.log; do [ -f "$f" ] && { echo "$(basename "$f") (tail):"; tail -n 30 "$f"; }; done
    for f in "$W"/resolver-*.log "$W"/secondary-*.log "$W/unbound.log"; do [ -f "$f" ] && { echo "$(basename "$f") (tail):"; tail -n 15 "$f"; }; done
    mta_failure_context
  fi
  mta_stop
  local n
  for n in "${!EXTRA_PID[@]}"; do stop_pid "${EXTRA_PID[$n]}" "$n"; done
  stop_pid "$PID_UNBOUND" unbound
  stop_pid "$PID_SHD" smarthostd
  for n in "${!SHD_PID[@]}"; do stop_pid "${SHD_PID[$n]}" "smarthostd $n"; done
  for n in "${!SINK_PID[@]}"; do stop_pid "${SINK_PID[$n]}" "sink $n"; done
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
  [ "$SECONDARY" = 1 ] && ALL_NS+=("$NS_SEC")
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
  for ns in "${ALL_NS[@]}"; do
    [ "$ns" = "$NS_CORE" ] && continue
    role="${ns#"$ID"-}"
    ip -n "$NS_CORE" link add "v-$role" type veth peer name eth0 netns "$ns"
    ip -n "$NS_CORE" link set "v-$role" master br0 up
    ip -n "$ns" link set eth0 up
  done
  local a
  for a in "${SHD_IPS[@]}"; do ip -n "$NS_DNS" addr add "$a/16" dev eth0; done
  ip -n "$NS_DNS" addr add "$IP_UNBOUND/16" dev eth0
  ip -n "$NS_MTA" addr add "$IP_MTA/16" dev eth0
  [ "$SECONDARY" = 1 ] && ip -n "$NS_SEC" addr add "$IP_SEC/16" dev eth0
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

# The MTA namespace's resolv.conf (ip netns exec bind-mounts it over /etc/resolv.conf)
write_resolv_conf() {
  [ -d /etc/netns ] || MADE_ETC_NETNS=1
  mkdir -p "$NETNS_ETC"
  printf 'nameserver %s\noptions timeout:1 attempts:2%s\n' "$IP_UNBOUND" "${RESOLV_OPTIONS:+ $RESOLV_OPTIONS}" > "$NETNS_ETC/resolv.conf"
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
  local name="${h#*-}.${h%%-*}.smarthost.internal" tls=()
  [ -n "${SINK_TLS[$h]:-}" ] && tls=(--tls-cert "${SINK_TLS[$h]% *}" --tls-key "${SINK_TLS[$h]#* }")
  ip netns exec "${HOST_NS[$h]}" "$SYS_PY" "$HERE/smtp_sink.py" --listen "${HOST_IP[$h]}:25" \
    --dir "$dir" --name "$name" "${tls[@]}" >>"$dir/sink.log" 2>&1 &
  SINK_PID[$h]=$!
  for ((i = 0; i < 100; i++)); do [ -f "$dir/ready" ] && return 0; sleep 0.1; done
  die "sink $h did not start (see $dir/sink.log)"
}

start_sinks() {
  local h
  for h in "${!HOST_IP[@]}"; do start_sink "$h"; done
  for h in "${!HOST_IP[@]}"; do
    tcp_reachable "$NS_MTA" "${HOST_IP[$h]}" 25 || die "sink $h (${HOST_IP[$h]}:25) not reachable from the MTA namespace"
  done
}

# ---------------------------------------------------------------------------------------------
# smarthostd
# ---------------------------------------------------------------------------------------------
# write_smarthostd_config INSTANCE: the config of instance 1 (IP_SHD, admin 127.0.0.1:8053) or 2
# (IP_SHD2, admin 127.0.0.1:8054), each with its own folder, i.e. its own state_dir; the zone
# names every address of SHD_IPS as a name server (with SECONDARY=1 the secondary alone). With
# two instances, they are one cluster: [cluster] names both admin listeners, and both read one
# token file (made once per run). With SECONDARY=1, [transfer]: the secondary may transfer with
# an hmac-sha256 key made once per run ($W/tsig-secret) and is sent NOTIFY.
shd_ip() { [ "$1" = 1 ] && echo "$IP_SHD" || echo "$IP_SHD2"; }
shd_admin() { echo "127.0.0.1:$(( 8052 + $1 ))"; }
shd_dir() { [ "$1" = 1 ] && echo "$W/smarthostd" || echo "$W/smarthostd-$1"; }
shd_log() { [ "$1" = 1 ] && echo "$W/smarthostd.log" || echo "$W/smarthostd-$1.log"; }
# The addresses resolvers are pointed at (and the zone's NS records): the smarthostd instances,
# or with SECONDARY=1 the secondary alone.
zone_ns_ips() { if [ "$SECONDARY" = 1 ]; then echo "$IP_SEC"; else printf '%s\n' "${SHD_IPS[@]}"; fi; }

write_smarthostd_config() {
  local inst="$1" dir i
  dir="$(shd_dir "$inst")"
  mkdir -p "$dir"
  {
    echo "\$ORIGIN smarthost.internal."
    echo "\$TTL 30"
    echo "@   IN SOA ns1.smarthost.internal. hostmaster.smarthost.internal. ( 1 3600 600 86400 2 )"
    local ns_ips; mapfile -t ns_ips < <(zone_ns_ips)
    for ((i = 0; i < ${#ns_ips[@]}; i++)); do echo "@   IN NS  ns$(( i + 1 )).smarthost.internal."; done
    for ((i = 0; i < ${#ns_ips[@]}; i++)); do echo "ns$(( i + 1 )) IN A   ${ns_ips[$i]}"; done
    # a name below an empty non-terminal (deep), for the signed zone's NODATA proof there
    if [ "$SHD_DNSSEC" = 1 ]; then echo 'info.deep IN TXT "e2e"'; fi
  } > "$dir/smarthost.internal.zone"
  local cluster="" token=""
  if [ "${#SHD_IPS[@]}" -gt 1 ]; then
    [ -s "$W/admin-token" ] || ( umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$W/admin-token" )
    token="admin_token_file = \"$W/admin-token\""
    cluster="[cluster]
peers = [$(for ((i = 1; i <= ${#SHD_IPS[@]}; i++)); do printf '"%s", ' "$(shd_admin "$i")"; done)]"
  fi
  cat > "$dir/smarthost.toml" <<EOF
[server]
listen = ["$(shd_ip "$inst"):53"]
admin = "$(shd_admin "$inst")"
state_dir = "$dir"
$token

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
hosts = [ { name = "mail1", addresses = ["${HOST_IP[oxford-mail1]}"]${HOST_PIN[oxford-mail1]:-} },
          { name = "mail2", addresses = ["${HOST_IP[oxford-mail2]}"]${HOST_PIN[oxford-mail2]:-} } ]

[sites.cambridge]
hosts = [ { name = "mail1", addresses = ["${HOST_IP[cambridge-mail1]}"]${HOST_PIN[cambridge-mail1]:-} },
          { name = "mail2", addresses = ["${HOST_IP[cambridge-mail2]}"]${HOST_PIN[cambridge-mail2]:-} } ]

$cluster
EOF
  if [ "$SHD_DNSSEC" = 1 ]; then
    printf '\n[dnssec]\nkey_dir = "%s"\n' "$W/keys" >> "$dir/smarthost.toml"
    # One key for every instance, made by the first config that needs it.
    if ! ls "$W/keys"/K*.private >/dev/null 2>&1; then
      "$SMARTHOSTD_BIN" dnssec keygen --config "$dir/smarthost.toml" >"$W/keygen.log" 2>&1 \
        || { cat "$W/keygen.log"; die "smarthostd dnssec keygen failed"; }
    fi
  fi
  if [ "$SECONDARY" = 1 ]; then
    # the key, made once (tsig-keygen, as the guide says); the config holding it is for root alone
    if [ ! -s "$W/tsig-secret" ]; then
      ( umask 077; tsig-keygen -a hmac-sha256 smarthost-xfr | sed -n 's/.*secret "\(.*\)";.*/\1/p' > "$W/tsig-secret" )
      [ -s "$W/tsig-secret" ] || die "tsig-keygen printed no secret"
    fi
    chmod 600 "$dir/smarthost.toml"
    cat >> "$dir/smarthost.toml" <<EOF

[transfer]
allow = ["$IP_SEC/32"]
notify = ["$IP_SEC"]
[[transfer.tsig]]
name = "smarthost-xfr"
algorithm = "hmac-sha256"
secret = "$(cat "$W/tsig-secret")"
EOF
  fi
  "$SMARTHOSTD_BIN" check-config "$dir/smarthost.toml" >"$W/check-config-$inst.log" 2>&1 \
    || { cat "$W/check-config-$inst.log"; die "smarthostd check-config failed"; }
}

# trust_anchor FORM: what `smarthostd dnssec ds` prints for FORM (unbound, bind, kresd, pdns,
# ds, dnskey), for the key the instances share; the resolvers are configured with exactly it.
trust_anchor() {
  local out
  out=$("$SMARTHOSTD_BIN" dnssec ds --config "$(shd_dir 1)/smarthost.toml") || die "smarthostd dnssec ds failed"
  case "$1" in
    unbound) grep '^    trust-anchor: ' <<<"$out" | sed 's/^ *//' ;;
    bind) sed -n '/^trust-anchors {/,/^};/p' <<<"$out" ;;
    kresd) grep '^trust_anchors.add(' <<<"$out" ;;
    pdns) grep '^addTA(' <<<"$out" ;;
    ds) grep -m1 ' IN DS ' <<<"$out" | awk '{ print $4, $5, $6, $7 }' ;;
    dnskey) grep ' IN DNSKEY ' <<<"$out" | sed 's/ *;.*//' ;;
  esac
}

# ad_status SERVER [NAME TYPE]: "RCODE ad" or "RCODE -" for one query with DO and AD set
ad_status() {
  local out flags
  out=$(ip netns exec "$NS_MTA" dig +dnssec +adflag +time=1 +tries=1 @"$1" "${2:-oxford.smarthost.internal}" "${3:-MX}" 2>&1 || true)
  flags=$(sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' <<<"$out")
  printf '%s %s\n' "$(sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$out" | grep . || echo timeout)" \
    "$(grep -qw ad <<<"$flags" && echo ad || echo -)"
}

# launch_smarthostd INSTANCE: starts it (config already written), sets SHD_PID[INSTANCE]
launch_smarthostd() {
  local inst="$1"
  NO_COLOR=1 ip netns exec "$NS_DNS" "$SMARTHOSTD_BIN" serve --config "$(shd_dir "$inst")/smarthost.toml" \
    >>"$(shd_log "$inst")" 2>&1 &
  SHD_PID[$inst]=$!
}

# wait_smarthostd_ready INSTANCE
wait_smarthostd_ready() {
  local inst="$1" i
  for ((i = 0; i < 150; i++)); do
    kill -0 "${SHD_PID[$inst]}" 2>/dev/null || die "smarthostd $inst exited (see log)"
    [ "$(ip netns exec "$NS_DNS" curl -s -o /dev/null -w '%{http_code}' "http://$(shd_admin "$inst")/readyz" 2>/dev/null)" = 200 ] && return 0
    sleep 0.1
  done
  die "smarthostd $inst not ready within 15 s"
}

start_smarthostd() { # start_smarthostd [INSTANCE]: config, start, wait until ready
  local inst="${1:-1}"
  write_smarthostd_config "$inst"
  launch_smarthostd "$inst"
  wait_smarthostd_ready "$inst"
  [ "$inst" = 1 ] && PID_SHD="${SHD_PID[1]}"
  return 0
}

# ---------------------------------------------------------------------------------------------
# unbound
# ---------------------------------------------------------------------------------------------
CACHE_MAX_TTL=${CACHE_MAX_TTL:-1}

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

UNBOUND_EXTRA=""   # more server: lines (the two-server case sets infra-host-ttl)

# unbound's DNSSEC lines: validating with the zone's trust anchor when smarthostd signs, else
# none (smarthost.internal is a private name with no chain of trust: insecure).
unbound_dnssec() {
  if [ "$SHD_DNSSEC" = 1 ]; then
    echo '  module-config: "validator iterator"'
    echo '  val-log-level: 2'
    trust_anchor unbound | sed 's/^/  /'
  else
    echo '  # No DNSSEC: smarthost.internal is a private name with no chain of trust.'
    echo '  module-config: "iterator"'
    echo '  domain-insecure: "smarthost.internal"'
  fi
}

start_unbound() {
  mkdir -p "$W/unbound"
  local stub="" a
  for a in $(zone_ns_ips); do stub+="  stub-addr: $a"$'\n'; done
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
$(unbound_dnssec)
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
$UNBOUND_EXTRA
$(static_answer)
stub-zone:
  name: "smarthost.internal"
$stub
remote-control:
  control-enable: no
EOF
  unbound-checkconf "$W/unbound/unbound.conf" >/dev/null || die "unbound-checkconf failed"
  ip netns exec "$NS_DNS" unbound -d -c "$W/unbound/unbound.conf" >"$W/unbound.log" 2>&1 &
  PID_UNBOUND=$!
  wait_resolver_up "$PID_UNBOUND" unbound
}

# wait_resolver_up PID NAME: until the resolver answers the zone's SOA (10 s)
wait_resolver_up() {
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$1" 2>/dev/null || die "$2 exited (see its log)"
    ip netns exec "$NS_MTA" dig +time=1 +tries=1 @"$IP_UNBOUND" smarthost.internal SOA 2>/dev/null \
      | grep -q 'status: NOERROR' && return 0
    sleep 0.1
  done
  die "$2 not answering within 10 s"
}

# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------
# The oxford answer of type ANSWER_QTYPE from the server given: for MX one "pref exchange" per
# line, for A one address per line; sorted.
mx_answer() {
  ip netns exec "$NS_MTA" dig +short +time=1 +tries=1 @"$1" oxford.smarthost.internal "${2:-$ANSWER_QTYPE}" 2>/dev/null | sort || true
}
is_withdrawn() { # answer lists no oxford host (and is not empty)
  [ -n "$1" ] && ! grep -qE '\.oxford\.smarthost\.internal\.$|^10\.99\.1\.' <<<"$1"
}
is_restored() { # answer lists both oxford hosts (MX: at preference 10)
  if [ "$ANSWER_QTYPE" = A ]; then
    grep -qx "${OX_IPS[0]}" <<<"$1" && grep -qx "${OX_IPS[1]}" <<<"$1"
  else
    grep -qx '10 mail1\.oxford\.smarthost\.internal\.' <<<"$1" && grep -qx '10 mail2\.oxford\.smarthost\.internal\.' <<<"$1"
  fi
}
is_full() { # MX: both sites, both hosts, local at 10 and remote at 20; A: both oxford addresses only
  if [ "$ANSWER_QTYPE" = A ]; then
    is_restored "$1" && [ "$(wc -l <<<"$1")" = 2 ]
  else
    is_restored "$1" && grep -qx '20 mail1\.cambridge\.smarthost\.internal\.' <<<"$1" \
      && grep -qx '20 mail2\.cambridge\.smarthost\.internal\.' <<<"$1"
  fi
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
# Postfix (the default MTA; other MTAs redefine send_batch, queue_empty and the hooks above)
# ---------------------------------------------------------------------------------------------
CONNECT_TIMEOUT=${CONNECT_TIMEOUT:-2}
HELO_TIMEOUT=${HELO_TIMEOUT:-2}
RELAYHOST="${RELAYHOST:-oxford.smarthost.internal}"

start_postfix() {
  mkdir -p "$PFX_ETC" "$PFX/queue" "$PFX/data"
  chown postfix "$PFX/data"
  write_resolv_conf
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
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
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
    "relayhost = $RELAYHOST" \
    "smtp_tls_security_level = ${SMTP_TLS_LEVEL:-none}" \
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
    "maximal_backoff_time = 2s" \
    "${POSTFIX_EXTRA[@]}"
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

queue_empty() { postqueue -c "$PFX_ETC" -p 2>&1 | grep -q '^Mail queue is empty'; }
show_queue() { postqueue -c "$PFX_ETC" -p | tail -n 5; }
postfix_log_count() { grep -c -- "$1" "$MAILLOG" 2>/dev/null || true; }

# ---------------------------------------------------------------------------------------------
# Deliveries
# ---------------------------------------------------------------------------------------------
DELIVERY_TIMEOUT=${E2E_DELIVERY_TIMEOUT:-150}   # seconds for one phase's mail to be delivered
CHANGE_TIMEOUT=30                               # seconds for smarthostd to change its answer

delivered() { "$SYS_PY" "$HERE/e2e_tools.py" delivered "$SINKS" "$1"; }

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
  show_queue
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
# Failure modes (FAILURE: killed, blackholed, hung)
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

# start_exim_daemon ROUTE LOG_SELECTOR TRANSPORT_LINES: Exim (unpacked, see ensure_unpacked_mtas)
# in NS_MTA on 127.0.0.1.2525 with its spool and logs under EX, relaying everything by the
# manualroute ROUTE ("oxford.smarthost.internal/MX" or "... byname"); TRANSPORT_LINES are added
# to the smtp transport (DANE settings, say). Returns once it accepts connections.
start_exim_daemon() {
  mkdir -p "$EX/spool" "$EX/log"
  chown -R Debian-exim:Debian-exim "$EX/spool" "$EX/log"
  cat > "$EX/exim.conf" <<CONF
primary_hostname = mta.e2e.test
qualify_domain = mta.e2e.test
exim_path = $EXIM
spool_directory = $EX/spool
log_file_path = $EX/log/%slog
pid_file_path = $EX/exim.pid
exim_user = Debian-exim
exim_group = Debian-exim
keep_environment =
local_interfaces = <; 127.0.0.1.2525
log_selector = $2
host_lookup =
rfc1413_hosts =
acl_smtp_rcpt = acl_check_rcpt
queue_run_max = 5
remote_max_parallel = 2

begin acl
acl_check_rcpt:
  accept hosts = 127.0.0.1
  deny

begin routers
smarthost:
  driver = manualroute
  transport = remote_smtp
  route_list = * $1
  no_more

begin transports
remote_smtp:
  driver = smtp
  connect_timeout = ${CONNECT_TIMEOUT}s
  command_timeout = 5s
  data_timeout = 5s
  final_timeout = 5s
  # TCP Fast Open (default: every host) can bypass connect_timeout: off
  hosts_try_fastopen = :
  hosts_max_try = 5
$3

begin retry
# A failed host is retried after 1 s (Exim skips a host, and defers a message whose every host
# failed, until the host's retry time): short, so no route stays on hold after the outage.
*   *   F,1h,1s

begin rewrite
begin authenticators
CONF
  "$EXIM" -C "$EX/exim.conf" -bV >"$EX/bV.out" 2>&1 || { cat "$EX/bV.out"; die "exim -bV failed"; }
  ip netns exec "$NS_MTA" "$EXIM" -C "$EX/exim.conf" -bdf -q1s >"$EX/daemon.out" 2>&1 &
  EXTRA_PID[exim]=$!
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "${EXTRA_PID[exim]}" 2>/dev/null || die "exim exited (see $EX/daemon.out, $EX/log)"
    [ -s "$EX/exim.pid" ] && tcp_reachable "$NS_MTA" 127.0.0.1 2525 && return 0
    sleep 0.1
  done
  die "exim did not start within 10 s"
}
