#!/usr/bin/env bash
# Builds the Debian package target/debian/smarthostd_<version>-1_<arch>.deb:
#   1. the release binary (cargo build --release --locked), whose commands read
#      /etc/smarthostd/smarthost.toml when given no --config (SMARTHOSTD_DEFAULT_CONFIG);
#   2. its man pages and bash, zsh and fish completions, written by the binary itself
#      (`smarthostd generate`, hidden), so that they always match its command line, into
#      target/debian-assets/;
#   3. its systemd unit and its /etc/smarthostd/smarthost.toml, made from
#      deploy/smarthostd.service and deploy/smarthost.toml (deploy/debian/unit.sh, config.py);
#   4. `cargo deb --no-build`, which packages what Cargo.toml's [package.metadata.deb] lists,
#      with the maintainer scripts and changelog of deploy/debian/.
# Needs cargo-deb: cargo install cargo-deb --locked. The last line printed is the .deb's path.
#
#   bash deploy/debian/build-deb.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v cargo-deb >/dev/null; then
  echo "build-deb: cargo-deb is missing; install it with: cargo install cargo-deb --locked" >&2
  exit 1
fi

SMARTHOSTD_DEFAULT_CONFIG=/etc/smarthostd/smarthost.toml cargo build --release --locked
bin="${CARGO_TARGET_DIR:-target}/release/smarthostd"
# Where Cargo.toml's assets expect them, whatever CARGO_TARGET_DIR says.
assets=target/debian-assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" generate man "$assets/man"
"$bin" generate completions bash > "$assets/completions/smarthostd"
"$bin" generate completions zsh > "$assets/completions/_smarthostd"
"$bin" generate completions fish > "$assets/completions/smarthostd.fish"
# The conffile, made from the production example deploy/smarthost.toml.
python3 deploy/debian/config.py > "$assets/smarthost.toml"
# The unit, made from deploy/smarthostd.service (systemd-units.unit-scripts in Cargo.toml).
mkdir -p "$assets/systemd"
bash deploy/debian/unit.sh > "$assets/systemd/smarthostd.service"

cargo deb --no-build --locked
