#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (default 60), one per core at a time, from the committed seed corpus, and exits
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
#   FUZZ_TARGETS     targets to run (default: all five)
#   FUZZ_SANITIZER   cargo fuzz --sanitizer (default none: the code under test is safe Rust,
#                    and AddressSanitizer makes `request` about 10x slower)
#   FUZZ_JOBS        cargo build jobs (default: all cores)
#   FUZZ_PARALLEL    targets fuzzed at once (default: one per core)
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
TARGETS="${FUZZ_TARGETS:-request request_diff smtp_reply config peer}"
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

BIN_DIR="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
PARALLEL="${FUZZ_PARALLEL:-$(nproc)}"

# Runs one target; its exit status is the fuzzer's (non-zero on a crash, hang or OOM).
fuzz_one() {
  local target="$1" seeds work
  seeds="$FUZZ_DIR/corpus/$(corpus_of "$target")"
  work="$FUZZ_DIR/scratch/$target"
  rm -rf "$work"
  mkdir -p "$work" "$FUZZ_DIR/artifacts/$target"
  cp "$seeds"/* "$work"/
  # shellcheck disable=SC2046
  $NICE "$BIN_DIR/$target" "$work" \
    -artifact_prefix="$FUZZ_DIR/artifacts/$target/" \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=512 -timeout=5 \
    -print_final_stats=1 $(extra_args "$target") >"$FUZZ_DIR/scratch/$target.log" 2>&1
}

report() {
  local target="$1" status="$2" log="$FUZZ_DIR/scratch/$1.log"
  if [ "$status" -eq 0 ]; then
    echo "-- $target: ok"
    grep -E '[[:space:]]DONE[[:space:]]' "$log" | tail -n 1 || true
    grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  else
    echo "!! $target FAILED (exit $status); the end of $log:"
    tail -n 80 "$log"
    failed+=("$target")
  fi
}

# Targets run side by side, one per core.
echo "== fuzzing $TARGETS for ${SECONDS_PER_TARGET}s each, $PARALLEL at a time"
mkdir -p "$FUZZ_DIR/scratch"
failed=()
running=()
pids=()
for target in $TARGETS; do
  if [ ! -x "$BIN_DIR/$target" ]; then
    echo "!! no fuzz target $target in $BIN_DIR" >&2
    exit 2
  fi
  fuzz_one "$target" &
  running+=("$target")
  pids+=("$!")
  if [ "${#pids[@]}" -ge "$PARALLEL" ]; then
    status=0
    wait "${pids[0]}" || status=$?
    report "${running[0]}" "$status"
    running=("${running[@]:1}")
    pids=("${pids[@]:1}")
  fi
done
for i in "${!pids[@]}"; do
  status=0
  wait "${pids[$i]}" || status=$?
  report "${running[$i]}" "$status"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "== fuzzing found problems in: ${failed[*]} (inputs in $FUZZ_DIR/artifacts/)"
  exit 1
fi
echo "== no fuzz target found a problem"
