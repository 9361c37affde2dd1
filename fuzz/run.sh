#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) from the committed seed corpus, and exits
# non-zero if any of them finds a crash, a hang, a leak or an out-of-memory.
#
#   bash fuzz/run.sh 30                 # what CI runs
#   FUZZ_TARGETS="request" bash fuzz/run.sh 600
#
# Runs start from a scratch copy of fuzz/corpus/<target>, so they never grow the committed
# corpus; what they find is kept in fuzz/scratch/ (git-ignored) and crashing inputs in
# fuzz/artifacts/<target>/.
#
# Environment:
#   FUZZ_TARGETS     targets to run (default: all four)
#   FUZZ_SANITIZER   cargo fuzz --sanitizer (default none: the code under test is safe Rust,
#                    and AddressSanitizer makes `request` about 10x slower)
#   FUZZ_JOBS        cargo build jobs (default: all cores)
set -euo pipefail

SECONDS_PER_TARGET="${1:-60}"
case "$SECONDS_PER_TARGET" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

FUZZ_DIR="$(cd "$(dirname "$0")" && pwd)"
cd "$FUZZ_DIR"

# cargo-fuzz passes nightly-only flags; the stable toolchain accepts them with this.
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FUZZ_DIR/target}"
TARGETS="${FUZZ_TARGETS:-request request_diff smtp_reply config}"
SANITIZER="${FUZZ_SANITIZER:-none}"
# Builds and runs share the machine with other work.
NICE="nice -n 10"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  $NICE cargo install cargo-fuzz --locked
fi

# One build of every target, with the flags `cargo fuzz run` uses below, so that it reuses it.
BUILD_FLAGS=(--sanitizer "$SANITIZER" --codegen-units 16)
if [ -n "${FUZZ_JOBS:-}" ]; then
  export CARGO_BUILD_JOBS="$FUZZ_JOBS"
fi
echo "== building fuzz targets (sanitizer: $SANITIZER)"
build_start=$(date +%s)
$NICE cargo fuzz build "${BUILD_FLAGS[@]}"
echo "== built in $(( $(date +%s) - build_start ))s"

# Per-target options. request and request_diff share the request corpus and the dictionary.
corpus_of() {
  case "$1" in
    request_diff) echo request ;;
    *) echo "$1" ;;
  esac
}
extra_args() {
  case "$1" in
    request | request_diff) echo "-max_len=65535 -dict=$FUZZ_DIR/dicts/dns.dict" ;;
    config) echo "-max_len=65535" ;;
    smtp_reply) echo "-max_len=65535" ;;
  esac
}

failed=()
for target in $TARGETS; do
  seeds="$FUZZ_DIR/corpus/$(corpus_of "$target")"
  work="$FUZZ_DIR/scratch/$target"
  rm -rf "$work"
  mkdir -p "$work" "$FUZZ_DIR/artifacts/$target"
  cp "$seeds"/* "$work"/
  echo "== fuzzing $target for ${SECONDS_PER_TARGET}s"
  log="$FUZZ_DIR/scratch/$target.log"
  # shellcheck disable=SC2046
  if $NICE cargo fuzz run "${BUILD_FLAGS[@]}" "$target" "$work" -- \
      -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=512 -timeout=5 \
      -print_final_stats=1 $(extra_args "$target") >"$log" 2>&1; then
    grep -E '^Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb' "$log" || true
    grep -E '#[0-9]+ +DONE' "$log" | tail -1 || true
  else
    echo "!! $target FAILED: last lines of $log:"
    tail -n 60 "$log"
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "== fuzzing found problems in: ${failed[*]} (inputs in $FUZZ_DIR/artifacts/)"
  exit 1
fi
echo "== no fuzz target found a problem"
