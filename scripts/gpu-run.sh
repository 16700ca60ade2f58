#!/usr/bin/env bash
# Everything a session with a GPU machine checks (device tool), in two calls
# on the same warm machine (one call may last at most 10 minutes; the
# session has 15 minutes of device time in all, start-up included):
#
#   run(command="PHASES='check bench' scripts/gpu-run.sh",
#       carry=["target/release/runner", "target/release/runner-worker", "data/bundled"], timeout_s=540)
#   run(command="PHASES='train-graph e2e' scripts/gpu-run.sh",
#       carry=["target/release/runner", "target/release/runner-worker", "data/bundled"], timeout_s=330)
#
# The GPU machine has PyTorch 2.11.0+cu130 at /opt/torch/.venv, no cargo and
# no network (FACTS.md section 9): the binary and the bundled data are built
# and fetched here, then carried. Each phase has its own time limit and its
# output goes to $OUT as soon as the phase ends, so a phase that fails or runs
# out of time loses nothing that came before it. The phases:
#
#   check        scripts/gpu-check.sh: libtorch, CUDA, a computation per GPU vs the CPU
#   bench        scripts/gpu-bench.sh: runner vs the PyTorch reference, 6 cells each (R7)
#   train-graph  the quickstart trained on CUDA with the CUDA-graph step (the
#                default) and eagerly (--cuda-graph off), then in bf16
#   e2e          experiments/pathetique-maestro-scale.kdl (the write-up's
#                sizes on ~7M notes): data preparation from a cold cache,
#                then both runs side by side for E2E_SECONDS (default 150),
#                stopped with SIGINT; benches/end_to_end.py projects the rest
#   experiments  pathetique.kdl, pathetique-cpu.kdl and ablation-cpu.kdl, all
#                at once on the GPU with --jobs (R5, R6; not in the default set)
#   reports      runner report for each of them (not in the default set)
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
phases=${PHASES:-check bench train-graph e2e}
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

train_graph() {
  local eager=/tmp/quickstart-eager.kdl bf16=/tmp/quickstart-bf16.kdl
  printf 'experiment quickstart-eager {\n    extends "%s"\n}\n' "$repo/experiments/quickstart.kdl" >"$eager"
  printf 'experiment quickstart-bf16 {\n    extends "%s"\n    train { precision bf16 }\n}\n' \
    "$repo/experiments/quickstart.kdl" >"$bf16"
  "$RUNNER_BIN" exec experiments/quickstart.kdl --store "$store" --device cuda
  "$RUNNER_BIN" exec "$eager" --store "$store" --device cuda --cuda-graph off
  "$RUNNER_BIN" exec "$bf16" --store "$store" --device cuda
  for f in experiments/quickstart.kdl "$eager" "$bf16"; do "$RUNNER_BIN" report "$f" --store "$store"; done
  # How each trained (graph or eager) and where it ended.
  grep -h '"step"\|val_dist\|"seconds"' "$store"/quickstart*/*/summary.json | head -n 30
}

e2e() {
  local experiment=${E2E_EXPERIMENT:-pathetique-maestro-scale} seconds=${E2E_SECONDS:-150} device=${E2E_DEVICE:-cuda}
  local python=${PYTHON:-/opt/torch/.venv/bin/python}
  [ "$experiment" = pathetique-maestro-scale ] && scripts/maestro-scale
  local t0=$EPOCHREALTIME
  "$RUNNER_BIN" data inspect "experiments/$experiment.kdl" --store "$store" >"$out/e2e-data.txt"
  head -n 12 "$out/e2e-data.txt"
  local data_s t1 windows
  windows=$(awk -F'│' '$2 ~ /^ *train *$/ { gsub(/ /, "", $5); print $5; exit }' "$out/e2e-data.txt")
  data_s=$("$python" -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$EPOCHREALTIME")
  t1=$SECONDS
  # SIGINT: runner checkpoints and stops after the current step (workers too).
  timeout --signal=INT --kill-after=60 "$seconds" \
    "$RUNNER_BIN" exec "experiments/$experiment.kdl" --store "$store" --device "$device" --jobs 2
  "$python" benches/end_to_end.py --store "$store" --experiment "$experiment" \
    --data-seconds "$data_s" --wall-seconds "$((SECONDS - t1))" --train-windows "${windows:-0}" | tee "$out/e2e.md"
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

export repo store out
export -f train_graph e2e experiments reports
phase check 60 scripts/gpu-check.sh
phase bench 450 env OUT="$out/bench" scripts/gpu-bench.sh
phase train-graph 90 bash -c train_graph
phase e2e 240 bash -c e2e
phase experiments 270 bash -c experiments
phase reports 45 bash -c reports
# Checkpoints are large and can be rebuilt; everything else comes back.
find "$store" -type d -name checkpoint -prune -exec rm -rf {} + 2>/dev/null
echo "== done after $((SECONDS - start))s" | tee -a "$out/phases.txt"
cp "$out/phases.txt" "$final/"
tar czf "$final/gpu-run.tgz" -C "$out" .
