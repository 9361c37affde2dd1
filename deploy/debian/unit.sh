#!/usr/bin/env bash
# Prints the Debian package's systemd unit, made from deploy/smarthostd.service (the one
# source): the binary in /usr/bin, and the package's system user (its postinst creates it)
# where the hand-installed unit allocates a dynamic one. build-deb.sh writes it where
# Cargo.toml's systemd-units.unit-scripts points; tests/integration/package.rs checks it.
#
#   bash deploy/debian/unit.sh > smarthostd.service
set -euo pipefail
cd "$(dirname "$0")/../.."

cat <<'HEADER'
# /usr/lib/systemd/system/smarthostd.service, from the Debian package smarthostd.
#
# smarthostd: health-checked, site-aware DNS for outbound mail smart hosts.
# The package neither enables nor starts it: edit /etc/smarthostd/smarthost.toml, check it
#   smarthostd check-config /etc/smarthostd/smarthost.toml
# then `systemctl enable --now smarthostd`. Change settings with `systemctl edit smarthostd`
# (a drop-in), not here. It is made from deploy/smarthostd.service of the source tree, the
# same unit for an install by hand; see /usr/share/doc/smarthostd/GUIDE.md.
HEADER
# Everything after the hand-installed unit's header (up to its first blank line).
unit=$(sed -e '1,/^$/d' \
  -e 's#/usr/local/bin/smarthostd#/usr/bin/smarthostd#g' \
  -e 's/^# Own, unprivileged user, allocated at start; files it writes belong to it\.$/# The package'\''s own system user, created by its postinst; files it writes belong to it./' \
  -e 's/^DynamicUser=yes$/User=smarthostd\nGroup=smarthostd/' \
  -e 's/^# \/run\/smarthostd: the control socket (server.control_socket), 0660; the folder belongs to$/# \/run\/smarthostd: the control socket (server.control_socket), 0660; the folder lets in the/' \
  -e 's/^# the dynamic user, so root alone (and the service) may act through it\.$/# group smarthostd alone, so root and its members (the operators) may act, no one else./' \
  deploy/smarthostd.service)
# A change to the source that these edits no longer fit must not pass unnoticed.
for gone in DynamicUser /usr/local/bin "dynamic user"; do
  if grep -qF "$gone" <<<"$unit"; then
    echo "unit.sh: \"$gone\" is still in the unit: deploy/smarthostd.service changed, mend the edits" >&2
    exit 1
  fi
done
echo
printf '%s\n' "$unit"
