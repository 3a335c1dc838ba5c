#!/usr/bin/env bash
# The test suite's fuzz loops, longer: the plan loader, the Prometheus parser (with the
# per-node sample and its quantiles) and the journal reader each on 1 000 000 mutated
# valid inputs instead of the suite's 10 000 (tests/it/support/mutate.rs).
#   scripts/fuzz.sh [CASES [SEED]]
# KONGUP_FUZZ_RELEASE=1 builds the test binary in release first (about 5x faster per input).
# A loop that finds a panic fails and saves the first inputs that panicked under
# $TMPDIR/kongup-fuzz-WHAT/; rerun with the same SEED to reproduce.
set -euo pipefail
cd "$(dirname "$0")/.."
export KONGUP_FUZZ_CASES="${1:-1000000}"
if [ -n "${2:-}" ]; then
  export KONGUP_FUZZ_SEED="$2"
fi
profile=()
if [ "${KONGUP_FUZZ_RELEASE:-0}" = 1 ]; then
  profile=(--release)
fi
exec cargo test "${profile[@]}" --test it -- fuzz_ --nocapture --test-threads 3
