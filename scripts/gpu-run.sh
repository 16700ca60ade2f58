#!/usr/bin/env bash
# Everything a session with a GPU machine checks, in one call (device tool):
#
#   run(command="scripts/gpu-run.sh", carry=["target/release/runner", "data/bundled"], timeout_s=560)
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
#   4. pathetique experiments/pathetique.kdl (the write-up's sizes) and
#                 experiments/pathetique-cpu.kdl (the CPU scale-down) on CUDA,
#                 then their reports (R6)
#
#   OUT           where results go (the device tool sets it; default gpu-out/)
#   PHASES        which phases to run (default "check bench bf16 pathetique")
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out=${OUT:-$repo/gpu-out}
mkdir -p "$out"
phases=${PHASES:-check bench bf16 pathetique}
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

pathetique() {
  "$RUNNER_BIN" exec experiments/pathetique-cpu.kdl --store "$store" --device cuda &
  local small=$!
  "$RUNNER_BIN" exec experiments/pathetique.kdl --store "$store" --device cuda
  wait "$small"
  for f in experiments/pathetique.kdl experiments/pathetique-cpu.kdl; do
    "$RUNNER_BIN" report "$f" --store "$store"
  done
}

export repo store
export -f bf16 pathetique
phase check 60 scripts/gpu-check.sh
phase bench 260 scripts/gpu-bench.sh
phase bf16 90 bash -c bf16
phase pathetique 240 bash -c pathetique
# Checkpoints are large and can be rebuilt; everything else comes back.
find "$store" -type d -name checkpoint -prune -exec rm -rf {} + 2>/dev/null
echo "== done after $((SECONDS - start))s" | tee -a "$out/phases.txt"
