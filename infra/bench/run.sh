#!/usr/bin/env bash
# Runs the benchmark suite and writes BENCHMARKS.md at the repository root.
#   bash infra/bench/run.sh            # everything (about 15-25 min on 2 cores)
#   QUICK=1 bash infra/bench/run.sh    # fewer runs, for a smoke check
# Every figure comes from a command printed next to it; loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=${QUICK:-}
runs=30; calls=200; big=1000; measure=3
if [ -n "$quick" ]; then runs=5; calls=50; big=200; measure=1; fi

out=BENCHMARKS.md.tmp
section() { printf '\n## %s\n\n' "$1" >>"$out"; }
failed=0
run() { # run <command...>: the command, then its output verbatim; a failure is written down, not fatal
  printf '`%s`\n\n```\n' "$*" >>"$out"
  if ! "$@" 2>&1 | tee -a "$out"; then
    echo "(this command failed; the figures above are incomplete)" | tee -a "$out"
    failed=1
  fi
  printf '```\n' >>"$out"
}

{
  echo "# Benchmarks"
  echo
  echo "Written by \`bash infra/bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "- $(rustc --version)"
  echo "- a shared, noisy machine: compare medians and ratios measured in the same run, not absolute numbers across runs."
} >"$out"

cargo build --release --workspace --bins --examples >/dev/null 2>&1 || cargo build --release --workspace --bins

section "Fan-out: all subscribers delivered, ours vs a raw broadcast ceiling"
echo "Per call: time from sending \`call\` until every subscriber holds the new version. The ceiling is an in-memory tokio broadcast server driven by the same client code; ours is the full local stack (DynamoDB write → stream → fan-out handler → @connections → gateway → sockets), with the fan-out's @connections posts delivered in-process (the local default; \`statecast-local --connections-transport http\` posts through the SDK over HTTP instead)." >>"$out"
echo >>"$out"
for n in 1 100 "$big"; do
  run target/release/statecast-loadtest --subscribers "$n" --calls "$calls"
done

section "Cold init per function (release build, minimal Lambda Runtime API)"
echo "Process start → first event's response posted, with the SDK clients built as in production; peak RSS from /proc (VmHWM)." >>"$out"
echo >>"$out"
run target/release/statecast-coldstart --runs "$runs"

section "Criterion micro-benchmarks"
for bench in delta fanout protocol; do
  printf '`cargo bench -p statecast --bench %s`\n\n```\n' "$bench" >>"$out"
  cargo bench -p statecast --bench "$bench" -- --warm-up-time 1 --measurement-time "$measure" 2>/dev/null \
    | grep -E '^[A-Za-z0-9_/ .-]+$|time:|thrpt:' | tee -a "$out" || { echo "(cargo bench failed)" | tee -a "$out"; failed=1; }
  printf '```\n' >>"$out"
done

section "Cost per operation (counted with an SDK interceptor on the embedded engine)"
printf '`cargo test -p statecast-tests --test cost -- --nocapture`\n\n' >>"$out"
cargo test -p statecast-tests --test cost -- --nocapture --test-threads 1 2>/dev/null | sed -n 's/^[^|]*\(|.*|\)$/\1/p' | tee -a "$out" \
  || { echo "(the cost test failed)" | tee -a "$out"; failed=1; }

section "Cost model: USD per million deliveries (prices are inputs in tests/benches/cost_model.rs)"
printf '`cargo bench -p statecast-tests --bench cost_model`\n\n' >>"$out"
cargo bench -p statecast-tests --bench cost_model 2>/dev/null | sed -n '/^per change/,$p' | tee -a "$out" \
  || { echo "(the cost model failed)" | tee -a "$out"; failed=1; }

section "Fan-out at scale: simulated subscribers, 5-15 ms posts, 10,000 posts/s throttle"
run cargo bench -p statecast-tests --bench fanout_scale -- 1000 10000 "$([ -n "$quick" ] && echo 10000 || echo 100000)"
run cargo bench -p statecast-tests --bench fanout_scale -- 1000 10000 --faults
run cargo bench -p statecast-tests --bench fanout_scale -- 10000 --one-partition

section "CPU per delivery of the @connections sender (real SDK, SigV4 over HTTP to a loopback server)"
run cargo bench -p statecast --bench sdk_post -- 20000 "$([ -n "$quick" ] && echo 3 || echo 11)"

section "Hot actor: fan-out lag, 100 changes/s to 1,000 simulated subscribers"
echo "One counter incremented 100 times a second by paced calls, 1,000 simulated subscribers, @connections taking 5-15 ms per post and accepting 10,000 posts/s (429 beyond). Lag per frame (one actor's changes in a stream batch are coalesced into one frame), overall and per 10 s window. First with local mode's stream trimming on (lag against the arrival of the call's reply), then with trimming off so the commit times (the actor item's updatedAt) can be read back from the stream." >>"$out"
echo >>"$out"
hot_seconds=60; if [ -n "$quick" ]; then hot_seconds=10; fi
for trim in --trim ""; do
  printf '`cargo bench -p statecast-tests --bench hot_actor -- --seconds %s --rate 100%s`\n\n```\n' "$hot_seconds" "${trim:+ $trim}" >>"$out"
  cargo bench -p statecast-tests --bench hot_actor -- --seconds "$hot_seconds" --rate 100 $trim 2>/dev/null | sed -n '/^one counter/,$p' | tee -a "$out" \
    || { echo "(the hot actor bench failed)" | tee -a "$out"; failed=1; }
  printf '```\n\n' >>"$out"
done

section "Delta size (todo list of 1,000 items, single-item edits)"
echo "Bytes of the frame each subscriber gets (delta, or snapshot when a patch would not be smaller) against the snapshot frame; exact counts, not timings." >>"$out"
echo >>"$out"
printf '`cargo test --release -p statecast --test delta_size -- --nocapture`\n\n```\n' >>"$out"
cargo test --release -p statecast --test delta_size -- --nocapture 2>/dev/null | grep -E '^todo,' | tee -a "$out" \
  || { echo "(the delta size test failed)" | tee -a "$out"; failed=1; }
printf '```\n' >>"$out"

section "Workflows: per-step overhead and DynamoDB requests per step"
echo "A chain of no-op steps on the embedded engine with local mode's default stream mapping: one action's end to the next action's start, and the requests counted by an SDK interceptor." >>"$out"
echo >>"$out"
printf '`cargo bench -p statecast-tests --bench workflow_steps -- 20 10`\n\n```\n' >>"$out"
cargo bench -p statecast-tests --bench workflow_steps -- 20 10 2>/dev/null | sed -n '/^workflow per-step/,$p' | tee -a "$out" \
  || { echo "(the workflow bench failed)" | tee -a "$out"; failed=1; }
printf '```\n' >>"$out"

section "Contention: one hot actor, concurrent writers"
echo "Calls answering \`conflict\` and calls per second on one counter, on the embedded engine: writers sharing one \`\$default\` service (one process, as local mode: calls to one actor take turns) or each with its own (one Lambda container each: only the version check and the call's retry budget decide)." >>"$out"
echo >>"$out"
printf '`cargo bench -p statecast-tests --bench contention -- 20`\n\n```\n' >>"$out"
cargo bench -p statecast-tests --bench contention -- 20 2>/dev/null | sed -n '/^one counter/,$p' | tee -a "$out" \
  || { echo "(the contention bench failed)" | tee -a "$out"; failed=1; }
printf '```\n' >>"$out"

section "Coalescing: frames and bytes per subscriber, one hot actor"
echo "One todo actor changed ~100 times a second through local mode's real sockets, with and without coalescing a batch's changes of one actor into one frame; every subscriber must end at the last version." >>"$out"
echo >>"$out"
printf '`cargo bench -p statecast-tests --bench coalescing -- %s 3`\n\n```\n' "$big" >>"$out"
cargo bench -p statecast-tests --bench coalescing -- "$big" 3 2>/dev/null | sed -n '/^one todo actor/,$p' | tee -a "$out" \
  || { echo "(the coalescing bench failed)" | tee -a "$out"; failed=1; }
printf '```\n' >>"$out"

section "Resume: bytes saved, requests and bytes per change (exact counts)"
printf '`cargo bench -p statecast-tests --bench resume_cost`\n\n```\n' >>"$out"
cargo bench -p statecast-tests --bench resume_cost 2>/dev/null | sed -n '/^1,000-item/,$p' | tee -a "$out" \
  || { echo "(the resume bench failed)" | tee -a "$out"; failed=1; }
printf '```\n' >>"$out"

section "Deployment size (cargo lambda build --release --arm64 --output-format zip)"
if command -v cargo-lambda >/dev/null 2>&1; then
  start=$(date +%s)
  # Only the Lambda functions (the binaries of functions/*), not the local tools.
  bins=$(sed -n 's/^name = "\(statecast-[a-z]*\)"/--bin \1/p' functions/*/Cargo.toml | tr '\n' ' ')
  printf '`cargo lambda build --release --arm64 --output-format zip %s`\n\n' "$bins" >>"$out"
  # shellcheck disable=SC2086
  if cargo lambda build --release --arm64 --output-format zip $bins >/dev/null 2>&1; then
    echo "build: $(( $(date +%s) - start )) s" >>"$out"
    echo >>"$out"
    echo "| function | bootstrap.zip |" >>"$out"
    echo "|---|---|" >>"$out"
    for bin in $bins; do
      [ "$bin" = --bin ] && continue
      zip=target/lambda/$bin/bootstrap.zip
      printf '| %s | %s bytes |\n' "$(basename "$(dirname "$zip")")" "$(stat -c %s "$zip")" >>"$out"
    done
  else
    echo "cargo lambda build failed on this machine (see its output by running it by hand)." >>"$out"
  fi
else
  echo "cargo-lambda is not installed (\`pip install cargo-lambda ziglang\`); skipped." >>"$out"
fi

mv "$out" BENCHMARKS.md
echo "wrote BENCHMARKS.md"
exit "$failed"
