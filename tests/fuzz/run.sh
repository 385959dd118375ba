#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build/fuzz (ASan + UBSan, coverage on the libraries
# they use) and runs each one for a bounded time on a copy of its seed corpus.
#   tests/fuzz/run.sh [TARGET...]      FUZZ_SECONDS (default 30), FUZZ_JOBS (build jobs, 1),
#                                      FUZZ_SEED (default 1: CI runs the same input sequence)
# Exits non-zero on any finding; prints the executions each target reached.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build/fuzz}
seconds=${FUZZ_SECONDS:-30}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decoder config template)

# -fno-sanitize=function: clang 14 cannot assemble that check's prologue data for some coroutine
# functions (net/proxy.cpp: "Cannot represent a difference across sections"); the GCC ci
# build runs UBSan on all of the code.
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
flags+=" -fno-sanitize=function -g -O1"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSLUICE_FUZZ=ON -DSLUICE_WERROR=OFF -DCMAKE_CXX_FLAGS="$flags" >/dev/null
cmake --build "$build" -j"${FUZZ_JOBS:-1}" --target "${targets[@]/#/fuzz_}" >/dev/null

status=0
for t in "${targets[@]}"; do
  work=$build/fuzz-runs/$t
  rm -rf "$work" && mkdir -p "$work/corpus" "$work/artifacts"
  cp "$root/tests/fuzz/corpus/$t/"* "$work/corpus/"
  log=$work/fuzz.log
  # Leak detection stays on; the RSS limit catches unbounded growth on hostile input.
  if ! UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$build/bin/fuzz_$t" -max_total_time="$seconds" -seed="${FUZZ_SEED:-1}" -rss_limit_mb=2048 -timeout=25 \
      -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1; then
    echo "fuzz_$t: FINDING (see $log and $work/artifacts/)"
    tail -40 "$log"
    status=1
    continue
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "fuzz_$t: ${execs} executions in ${seconds}s (${rate}/s, ${cov}), no finding"
done
exit $status
