#!/usr/bin/env bash
# Everything a session with a GPU machine checks (device tool), in two calls
# on the same warm machine (one call may last at most 10 minutes):
#
#   run(command="PHASES='check bench' scripts/gpu-run.sh",
#       carry=["target/release/runner", "data/bundled"], timeout_s=400)
#   run(command="PHASES='bf16 experiments reports' scripts/gpu-run.sh",
#       carry=["target/release/runner", "data/bundled"], timeout_s=500)
#
# The GPU machine has PyTorch 2.11.0+cu130 at /opt/torch/.venv, no cargo and
# no network (FACTS.md section 9): the binary and the bundled data are built
# and fetched here, then carried. Each phase has its own time limit and its
# output goes to $OUT as soon as the phase ends, so a phase that fails or runs
# out of time loses nothing that came before it. The phases:
#
#   1. check      scripts/gpu-check.sh: libtorch, CUDA, a computation per GPU vs the CPU
#   2. bench      scripts/gpu-bench.sh: runner vs the PyTorch reference, 6 cells (R7)
#   3. bf16       the quickstart trained on CUDA in fp32 and in bf16 autocast
#   4. experiments  experiments/pathetique.kdl (the write-up's sizes),
#                 pathetique-cpu.kdl and ablation-cpu.kdl (the CPU scale-downs),
#                 all at once on the GPU with --jobs (R5, R6)
#   5. reports    runner report for each of them

#
#   OUT           where gpu-run.tgz goes (the device tool sets it; default gpu-out/)
#   PHASES        which phases to run (default: all)
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# The device tool brings back only a handful of files from $OUT, so
# everything is written to a work folder and packed into one archive,
# $OUT/gpu-run.tgz, at the end (phases.txt is copied beside it).
final=${OUT:-$repo/gpu-out}
out=$(mktemp -d /tmp/gpu-run.XXXXXX)
mkdir -p "$final"
phases=${PHASES:-check bench bf16 experiments reports}
export RUNNER_BIN=${RUNNER_BIN:-$repo/target/release/runner}
export TORCH_LIB=${TORCH_LIB:-/opt/torch/.venv/lib/python3.12/site-packages/torch/lib}
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
store=$out/runs
start=$SECONDS

# Runs phase $1 with a limit of $2 seconds, logging to $out/$1.log.
phase() {
  local name=$1 limit=$2
  shift 2
  case " $phases " in *" $name "*) ;; *) return 0 ;; esac
  echo "== $name (limit ${limit}s, at +$((SECONDS - start))s)" | tee -a "$out/phases.txt"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  echo "   $name: exit $rc after $((SECONDS - t0))s" | tee -a "$out/phases.txt"
  tail -n 25 "$out/$name.log"
}

bf16() {
  local file=/tmp/quickstart-bf16.kdl
  printf 'experiment quickstart-bf16 {\n    extends "%s"\n    train { precision bf16 }\n}\n' \
    "$repo/experiments/quickstart.kdl" >"$file"
  "$RUNNER_BIN" exec experiments/quickstart.kdl --store "$store" --device cuda
  "$RUNNER_BIN" exec "$file" --store "$store" --device cuda
  for f in experiments/quickstart.kdl "$file"; do "$RUNNER_BIN" report "$f" --store "$store"; done
}

experiments() {
  # One H100 is shared by every run here (--jobs puts several processes on
  # cuda:0): run times in these reports are not single-run timings.
  "$RUNNER_BIN" exec experiments/ablation-cpu.kdl --store "$store" --device cuda --jobs 4 &
  local ablation=$!
  "$RUNNER_BIN" exec experiments/pathetique-cpu.kdl --store "$store" --device cuda --jobs 2 &
  local small=$!
  "$RUNNER_BIN" exec experiments/pathetique.kdl --store "$store" --device cuda --jobs 2
  wait "$small" "$ablation"
}

reports() {
  for f in experiments/pathetique.kdl experiments/pathetique-cpu.kdl experiments/ablation-cpu.kdl; do
    "$RUNNER_BIN" report "$f" --store "$store"
  done
}

export repo store
export -f bf16 experiments reports
phase check 60 scripts/gpu-check.sh
phase bench 260 env OUT="$out/bench" scripts/gpu-bench.sh
phase bf16 60 bash -c bf16
phase experiments 270 bash -c experiments
phase reports 45 bash -c reports
# Checkpoints are large and can be rebuilt; everything else comes back.
find "$store" -type d -name checkpoint -prune -exec rm -rf {} + 2>/dev/null
echo "== done after $((SECONDS - start))s" | tee -a "$out/phases.txt"
cp "$out/phases.txt" "$final/"
tar czf "$final/gpu-run.tgz" -C "$out" .
