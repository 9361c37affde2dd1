#!/usr/bin/env bash
# install-test.sh: builds the Debian package and proves, on this machine, that it installs,
# runs and purges cleanly.
#
#   sudo bash tests/package/install-test.sh        (CI runs it as root)
#
# WHAT IT CHECKS
#   1. deploy/debian/build-deb.sh builds target/debian/smarthostd_*.deb.
#   2. dpkg -i installs it: dpkg -L lists the binary, the systemd unit, both conffiles, the man
#      pages and the bash, zsh and fish completions; the conffiles are registered as such; the
#      system user smarthostd exists and owns /var/lib/smarthostd (0750); the admin token
#      /etc/smarthostd/admin-token holds 64 hex characters, root:smarthostd 0640; the unit runs
#      /usr/bin/smarthostd as that user with RuntimeDirectory=smarthostd (0750). Nothing was
#      started (the package starts nothing).
#   3. smarthostd check-config accepts the shipped /etc/smarthostd/smarthost.toml.
#   4. The installed binary, started as the smarthostd user the way the unit would (same
#      ExecStart, user, group, working directory /, /run/smarthostd made as RuntimeDirectory=
#      makes it), becomes ready (/readyz on 127.0.0.1:8053), makes its control socket
#      /run/smarthostd/control.sock (smarthostd:smarthostd 0660) and answers
#      `dig @127.0.0.1 -p 5353 oxford.smarthost.internal MX` authoritatively.
#   5. Who may act. root's `smarthostd drain oxford/mail1`, with no flags, writes
#      /var/lib/smarthostd/drained-hosts, owned by smarthostd. An ordinary local user (made for
#      the test) can read `smarthostd status` but is refused a drain, by the command (which
#      says why: the socket and the token file it cannot open) and by `curl -X POST` to
#      127.0.0.1:8053 (401, with or without X-Smarthostd-Request), and nothing is drained; a
#      user in the group smarthostd (made for the test too) drains and undrains. Both users are
#      removed at the end.
#   6. SIGTERM stops it with exit status 0, and the control socket is gone.
#   7. Reinstalling (the upgrade path of the maintainer scripts) keeps a changed conffile, the
#      user, the drained hosts and the admin token.
#   8. dpkg --purge removes the package, /etc/smarthostd (the admin token with it),
#      /var/lib/smarthostd and the user and group smarthostd.
#   It ends with "install-test: passed" and exits non-zero on the first failure.
#
# SAFETY
#   It refuses to run when smarthostd is already installed or the user exists (it would purge
#   them), when /run/smarthostd or one of its test users exists, and when 127.0.0.1:5353 or
#   127.0.0.1:8053 is already in use (the shipped config's addresses). The shipped config's relays are loopback addresses: no probe leaves the machine.
#   Every wait is bounded; the server is stopped by its process id (never by name), also on
#   failure, and a package this script installed is purged on failure too.
#
# NEEDS
#   root, cargo and cargo-deb (cargo install cargo-deb --locked), dpkg, adduser, useradd
#   (passwd), setpriv (util-linux), ss (iproute2), curl and dig (dnsutils); missing Debian
#   packages are installed.
set -euo pipefail
cd "$(dirname "$0")/../.."

DNS_PORT=5353
ADMIN=127.0.0.1:8053
RUNTIME=/run/smarthostd
SOCKET=$RUNTIME/control.sock
TOKEN=/etc/smarthostd/admin-token
# Made for step 5 and removed after: a user with no rights, and an operator in the group.
OTHER=shd-test-other
OPERATOR=shd-test-operator
# Bounds, in seconds.
READY_WAIT=30
STOP_WAIT=15
work="$(mktemp -d)"
server_pid=""
installed=0
made_runtime=0
made_users=()

log() { echo "install-test: $*"; }
die() {
  echo "install-test: FAILED: $*" >&2
  if [ -s "$work/server.log" ]; then
    echo "---- server log" >&2
    tail -n 40 "$work/server.log" >&2
  fi
  exit 1
}

cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  for user in "${made_users[@]}"; do
    userdel "$user" >/dev/null 2>&1 || true
  done
  if [ "$made_runtime" = 1 ]; then
    rm -rf "$RUNTIME"
  fi
  if [ "$installed" = 1 ] && dpkg-query -W smarthostd >/dev/null 2>&1; then
    dpkg --purge smarthostd >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# ---- preconditions
[ "$(id -u)" = 0 ] || die "run as root (it installs and purges a package)"
if dpkg-query -W -f='${Status}' smarthostd 2>/dev/null | grep -q installed; then
  die "smarthostd is already installed here; this test would purge it (dpkg --purge smarthostd first)"
fi
if getent passwd smarthostd >/dev/null || getent group smarthostd >/dev/null; then
  die "a user or group smarthostd exists already; this test would delete it"
fi
for user in "$OTHER" "$OPERATOR"; do
  if getent passwd "$user" >/dev/null || getent group "$user" >/dev/null; then
    die "a user or group $user exists already; this test would delete it"
  fi
done
[ ! -e "$RUNTIME" ] || die "$RUNTIME exists already (a running smarthostd?); this test would remove it"
command -v cargo-deb >/dev/null || die "cargo-deb is missing: cargo install cargo-deb --locked"
missing=()
command -v adduser >/dev/null || missing+=(adduser)
command -v useradd >/dev/null || missing+=(passwd)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v ss >/dev/null || missing+=(iproute2)
command -v curl >/dev/null || missing+=(curl)
command -v dig >/dev/null || missing+=(dnsutils)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
for port in "$DNS_PORT" "${ADMIN##*:}"; do
  if [ -n "$(ss -Hlntu "sport = :$port")" ]; then
    die "port $port is in use on this machine (the shipped config needs 127.0.0.1:$DNS_PORT and $ADMIN):
$(ss -Hlntup "sport = :$port")"
  fi
done

# ---- 1. build
log "building the package"
deb="$(bash deploy/debian/build-deb.sh | tail -n 1)"
[ -f "$deb" ] || die "build-deb.sh did not name a package file (got: $deb)"
log "built $deb"
dpkg-deb -c "$deb" > "$work/contents"

# ---- 2. install
log "dpkg -i $(basename "$deb")"
installed=1
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; die "dpkg -i failed"; }
dpkg -L smarthostd > "$work/files"
for f in /usr/bin/smarthostd \
  /usr/lib/systemd/system/smarthostd.service \
  /etc/smarthostd/smarthost.toml \
  /etc/smarthostd/smarthost.internal.zone \
  /usr/share/man/man1/smarthostd.1.gz \
  /usr/share/man/man1/smarthostd-drain.1.gz \
  /usr/share/bash-completion/completions/smarthostd \
  /usr/share/zsh/vendor-completions/_smarthostd \
  /usr/share/fish/vendor_completions.d/smarthostd.fish; do
  grep -qx "$f" "$work/files" || die "dpkg -L smarthostd does not list $f"
  [ -f "$f" ] || die "$f is listed but not installed"
done
conffiles="$(dpkg-query -W -f='${Conffiles}' smarthostd)"
for f in /etc/smarthostd/smarthost.toml /etc/smarthostd/smarthost.internal.zone; do
  grep -q " $f " <<<"$conffiles" || die "$f is not a conffile: $conffiles"
done
[ "$(/usr/bin/smarthostd --version)" = "smarthostd $(dpkg-query -W -f='${Version}' smarthostd | sed 's/-[^-]*$//')" ] \
  || die "smarthostd --version does not match the package version"
zcat /usr/share/man/man1/smarthostd.1.gz | grep -q 'check\\-config' || die "the man page lacks check-config"
grep -q 'check-config' /usr/share/bash-completion/completions/smarthostd || die "the bash completion lacks check-config"
IFS=: read -r _ _ _ _ _ home shell < <(getent passwd smarthostd) || die "postinst did not create the user smarthostd"
[ "$home" = /var/lib/smarthostd ] || die "smarthostd's home is $home"
[ "$shell" = /usr/sbin/nologin ] || die "smarthostd's shell is $shell"
getent group smarthostd >/dev/null || die "postinst did not create the group smarthostd"
[ "$(stat -c '%U:%G %a' /var/lib/smarthostd)" = "smarthostd:smarthostd 750" ] \
  || die "/var/lib/smarthostd is $(stat -c '%U:%G %a' /var/lib/smarthostd)"
[ "$(stat -c '%U:%G %a %F' "$TOKEN")" = "root:smarthostd 640 regular file" ] \
  || die "$TOKEN is $(stat -c '%U:%G %a %F' "$TOKEN" 2>&1)"
grep -Eqx '[0-9a-f]{64}' "$TOKEN" || die "$TOKEN does not hold 64 hex characters"
if grep -q "$(cat "$TOKEN")" "$work/dpkg.log"; then die "dpkg -i printed the admin token"; fi
if ls /etc/smarthostd/.admin-token.* >/dev/null 2>&1; then die "a temporary token file was left in /etc/smarthostd"; fi
token_sum="$(sha256sum < "$TOKEN")"
unit=/usr/lib/systemd/system/smarthostd.service
grep -qx 'ExecStart=/usr/bin/smarthostd serve --config /etc/smarthostd/smarthost.toml' "$unit" || die "ExecStart in $unit"
grep -qx 'User=smarthostd' "$unit" || die "User= in $unit"
grep -qx 'StateDirectory=smarthostd' "$unit" || die "StateDirectory= in $unit"
grep -qx 'RuntimeDirectory=smarthostd' "$unit" || die "RuntimeDirectory= in $unit"
grep -qx 'RuntimeDirectoryMode=0750' "$unit" || die "RuntimeDirectoryMode= in $unit"
if grep -qx 'DynamicUser=yes' "$unit"; then die "$unit still has DynamicUser=yes"; fi
if [ -n "$(ss -Hlntu "sport = :$DNS_PORT")" ]; then die "installing started something on port $DNS_PORT"; fi
log "installed: files, conffiles, user, state directory and unit as expected"

# ---- 3. check-config
/usr/bin/smarthostd check-config /etc/smarthostd/smarthost.toml > "$work/check" || die "check-config rejects the shipped config: $(cat "$work/check")"
log "$(head -n 1 "$work/check")"

# ---- 4. run it as the unit would, wait for readiness, ask it
log "starting /usr/bin/smarthostd as smarthostd"
# What RuntimeDirectory=smarthostd with RuntimeDirectoryMode=0750 makes before ExecStart.
made_runtime=1
install -d -o smarthostd -g smarthostd -m 0750 "$RUNTIME"
(
  cd /
  NO_COLOR=1 exec setpriv --reuid=smarthostd --regid=smarthostd --init-groups -- \
    /usr/bin/smarthostd serve --config /etc/smarthostd/smarthost.toml
) > "$work/server.log" 2>&1 &
server_pid=$!
ready=0
for _ in $(seq 1 $((READY_WAIT * 10))); do
  kill -0 "$server_pid" 2>/dev/null || die "the server exited before it was ready"
  if curl -fsS --max-time 1 "http://$ADMIN/readyz" >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || die "not ready within ${READY_WAIT}s"
[ "$(stat -c %U "/proc/$server_pid")" = smarthostd ] || die "the server runs as $(stat -c %U "/proc/$server_pid")"
curl -fsS --max-time 5 "http://$ADMIN/metrics" | grep -qx 'smarthostd_ready 1' || die "/metrics lacks smarthostd_ready 1"
[ "$(stat -c '%U:%G %a %F' "$SOCKET")" = "smarthostd:smarthostd 660 socket" ] \
  || die "$SOCKET is $(stat -c '%U:%G %a %F' "$SOCKET" 2>&1)"
[ "$(stat -c '%U:%G %a' "$RUNTIME")" = "smarthostd:smarthostd 750" ] || die "the server changed $RUNTIME"
dig @127.0.0.1 -p "$DNS_PORT" +time=2 +tries=2 oxford.smarthost.internal MX > "$work/dig" || die "dig failed: $(cat "$work/dig")"
grep -q 'status: NOERROR' "$work/dig" || die "the answer is not NOERROR: $(cat "$work/dig")"
grep -Eq 'flags: qr aa' "$work/dig" || die "the answer is not authoritative: $(cat "$work/dig")"
grep -Eq '^oxford\.smarthost\.internal\..*IN[[:space:]]+MX[[:space:]]+[0-9]+ mail1\.oxford\.smarthost\.internal\.' "$work/dig" \
  || die "no MX for mail1.oxford in: $(cat "$work/dig")"
log "ready; oxford.smarthost.internal MX answered with $(grep -Ec '^oxford\.smarthost\.internal\..*IN[[:space:]]+MX' "$work/dig") records"

# ---- 5. who may act: root and the group smarthostd, not any local user
# root, with no flags, from a folder with no config of its own: the package's binary reads
# /etc/smarthostd/smarthost.toml and takes the control socket.
(cd / && /usr/bin/smarthostd drain oxford/mail1) > "$work/drain" 2>&1 || die "root's drain failed: $(cat "$work/drain")"
state=/var/lib/smarthostd/drained-hosts
# drained KEY: the state file holds KEY drained (an undrain is kept as "KEY undrained stamp=...",
# for the other instances of a cluster).
drained() { grep -E "^$1( |\$)" "$state" | grep -qv ' undrained'; }
[ -f "$state" ] || die "$state was not written"
[ "$(stat -c %U "$state")" = smarthostd ] || die "$state belongs to $(stat -c %U "$state")"
drained oxford/mail1 || die "$state does not name oxford/mail1: $(cat "$state")"
log "root drained oxford/mail1 with no flags: $state written by smarthostd"

useradd --no-create-home --shell /usr/sbin/nologin "$OTHER" || die "cannot make the user $OTHER"
made_users+=("$OTHER")
useradd --no-create-home --shell /usr/sbin/nologin --groups smarthostd "$OPERATOR" || die "cannot make the user $OPERATOR"
made_users+=("$OPERATOR")
as() { local user=$1; shift; (cd / && setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"); }

as "$OTHER" /usr/bin/smarthostd status > "$work/status" 2>&1 || die "$OTHER cannot read the status: $(cat "$work/status")"
grep -q 'oxford' "$work/status" || die "$OTHER's status lacks oxford: $(cat "$work/status")"
if as "$OTHER" /usr/bin/smarthostd drain oxford/mail2 > "$work/refused" 2>&1; then
  die "$OTHER drained oxford/mail2: $(cat "$work/refused")"
fi
for want in "refused" "bearer token" "$SOCKET" "$TOKEN" "group smarthostd"; do
  grep -qF "$want" "$work/refused" || die "the refusal does not say \"$want\": $(cat "$work/refused")"
done
if grep -qF "$(cat "$TOKEN")" "$work/refused"; then die "the refusal shows the token"; fi
log "$OTHER may read the status and is refused a drain: $(head -n 1 "$work/refused")"
for header in "" "X-Smarthostd-Request: 1"; do
  extra=()
  [ -z "$header" ] || extra=(-H "$header")
  # The answer goes to stdout: $work is not the test user's to write in.
  reply="$(as "$OTHER" curl -s -w ' %{http_code}' --max-time 5 -X POST "${extra[@]}" \
    "http://$ADMIN/hosts/oxford/mail2/drain")"
  [ "${reply##* }" = 401 ] || die "curl -X POST ${header:+-H '$header' }as $OTHER got: $reply"
  grep -q 'a valid bearer token is required' <<<"$reply" || die "the 401 does not say why: $reply"
done
if reply="$(as "$OTHER" curl -s --max-time 5 --unix-socket "$SOCKET" -X POST -H 'X-Smarthostd-Request: 1' \
  http://localhost/hosts/oxford/mail2/drain 2>&1)"; then
  die "$OTHER reached the control socket: $reply"
fi
if drained oxford/mail2; then die "$OTHER's attempts drained oxford/mail2: $(cat "$state")"; fi
log "curl -X POST to $ADMIN as $OTHER: 401; the control socket: not reachable; nothing drained"

# A wrong --token matters only over TCP: that this works shows the socket was taken.
as "$OPERATOR" /usr/bin/smarthostd drain oxford/mail2 --token not-the-token > "$work/operator" 2>&1 \
  || die "$OPERATOR (group smarthostd) cannot drain: $(cat "$work/operator")"
drained oxford/mail2 || die "$OPERATOR's drain was not saved: $(cat "$state")"
as "$OPERATOR" /usr/bin/smarthostd undrain oxford/mail2 > "$work/operator" 2>&1 || die "$OPERATOR cannot undrain: $(cat "$work/operator")"
if drained oxford/mail2; then die "$OPERATOR's undrain was not saved: $(cat "$state")"; fi
log "$OPERATOR (group smarthostd) drained and undrained oxford/mail2 through the socket"
for user in "${made_users[@]}"; do
  userdel "$user" || die "cannot remove the user $user"
done
made_users=()

# ---- 6. stop by process id
kill -TERM "$server_pid"
for _ in $(seq 1 $((STOP_WAIT * 10))); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$server_pid" 2>/dev/null && die "still running ${STOP_WAIT}s after SIGTERM"
status=0
wait "$server_pid" || status=$?
server_pid=""
[ "$status" = 0 ] || die "exit status $status after SIGTERM"
[ ! -e "$SOCKET" ] || die "$SOCKET is still there after the stop"
log "stopped by SIGTERM, exit status 0, control socket removed"

# ---- 7. reinstall over itself: a changed conffile, the user and the drains stay
echo "# changed by install-test" >> /etc/smarthostd/smarthost.toml
DEBIAN_FRONTEND=noninteractive dpkg --force-confold -i "$deb" > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; die "reinstalling failed"; }
grep -qx '# changed by install-test' /etc/smarthostd/smarthost.toml || die "reinstalling replaced the changed conffile"
getent passwd smarthostd >/dev/null || die "reinstalling lost the user"
drained oxford/mail1 || die "reinstalling lost the drained hosts"
[ "$(sha256sum < "$TOKEN")" = "$token_sum" ] || die "reinstalling changed the admin token"
[ "$(stat -c '%U:%G %a' "$TOKEN")" = "root:smarthostd 640" ] || die "reinstalling changed $TOKEN's owner or mode"
log "reinstalled: changed conffile, user, drained hosts and admin token kept"

# ---- 8. purge
DEBIAN_FRONTEND=noninteractive dpkg --purge smarthostd > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; die "dpkg --purge failed"; }
installed=0
if dpkg-query -W -f='${Status}' smarthostd 2>/dev/null | grep -q installed; then die "still installed after purge"; fi
for p in /usr/bin/smarthostd /etc/smarthostd /var/lib/smarthostd; do
  [ ! -e "$p" ] || die "$p is still there after purge"
done
if getent passwd smarthostd >/dev/null; then die "the user smarthostd is still there after purge"; fi
if getent group smarthostd >/dev/null; then die "the group smarthostd is still there after purge"; fi
[ ! -e "$TOKEN" ] || die "$TOKEN is still there after purge"
log "purged: package, /etc/smarthostd with the admin token, /var/lib/smarthostd, user and group gone"
log "passed"
