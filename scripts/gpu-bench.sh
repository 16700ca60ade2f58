#!/usr/bin/env bash
# One GPU session of the R7 throughput comparison (docs/perf.md), about
# seven minutes: runner (eager and CUDA graph) and PyTorch (nn.Transformer,
# hand-written + SDPA + fused Adam, and the latter compiled with
# mode="reduce-overhead") on the same card in the same call, for batch
# 16/64/256 x fp32/bf16 (all six cells of each), plus runner's data side
# and greedy decoding.
#
# Run from the repository root on a GPU machine that has no cargo and no
# network, with the release binary carried to target/release/runner:
#
#   OUT=/some/dir scripts/gpu-bench.sh        # the device tool sets $OUT
#
# Writes to $OUT (default ./gpu-bench-out): every JSON report, the logs,
# side-by-side.md (the tables with the ratios) and side-by-side.json.
#
# Compiling one cell costs ~40 s on an H100 machine, so the six compiled
# cells are first compiled at once, one process each (`--compile-only`),
# which fills inductor's on-disk caches; the timed processes later find
# their graphs there and compile in seconds (measured on the CPU: 129 s
# cold, 18 s warm). Nothing else runs while a cell is timed.
#
# Every piece runs under a timeout and a failed piece never stops the
# others. Pieces run in order of importance against a deadline
# (GPU_BENCH_SECONDS, default 420): runner eager, runner graph, PyTorch
# eager, then the compiled cells (their finished cells are kept even when
# a timeout cuts a piece short).
#
#   RUNNER_BIN  the binary (default target/release/runner)
#   PYTHON      PyTorch's Python (default /opt/torch/.venv/bin/python)
#   TORCH_LIB   libtorch's lib folder (default: that Python's torch/lib)
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out=${OUT:-$repo/gpu-bench-out}
mkdir -p "$out"
runner_bin=${RUNNER_BIN:-$repo/target/release/runner}
python=${PYTHON:-/opt/torch/.venv/bin/python}
torch_lib=${TORCH_LIB:-/opt/torch/.venv/lib/python3.12/site-packages/torch/lib}
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
budget=${GPU_BENCH_SECONDS:-420}
start=$SECONDS
steps=30 warmup=5

log() { echo "gpu-bench [$((SECONDS - start))s]: $*" | tee -a "$out/gpu-bench.log" >&2; }

# piece CAP NAME COMMAND...: runs COMMAND (stdout to $out/NAME.json) with a
# timeout of at most CAP seconds and never past the deadline; skipped when
# fewer than 15 seconds are left.
piece() {
  local cap=$1 name=$2; shift 2
  local left=$((budget - (SECONDS - start)))
  if [ "$left" -lt 15 ]; then
    log "$name skipped: ${left}s left"
    return
  fi
  local limit=$((cap < left ? cap : left))
  local began=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.json" 2>"$out/$name.log"
  local rc=$?
  if [ $rc -eq 0 ]; then
    log "$name done in $((SECONDS - began))s"
  else
    log "$name failed (exit $rc after $((SECONDS - began))s, limit ${limit}s); tail of $name.log:"
    tail -n 4 "$out/$name.log" | tee -a "$out/gpu-bench.log" >&2
    [ -s "$out/$name.json" ] && python_ok_json "$out/$name.json" || rm -f "$out/$name.json"
  fi
}

# Keeps a JSON file only if it parses (a killed process may leave half a file).
python_ok_json() { "$python" -c 'import json,sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null; }

{
  echo "date: $(date -u +%FT%TZ)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  echo "cpus: $(nproc)"
  "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' 2>&1
  "$runner_bin" info 2>&1
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt" >&2
[ -x "$runner_bin" ] || log "no runner binary at $runner_bin: runner pieces will fail"

ref=(benches/pytorch_reference.py --device cuda --steps "$steps" --warmup "$warmup")
run=("$runner_bin" bench train --device cuda --batch 16,64,256 --steps "$steps" --warmup "$warmup" --json)

# 0. Compile the six compiled cells at once (untimed), to fill the caches.
warm_compiled() {
  local pids=() precision batch
  for precision in fp32 bf16; do
    for batch in 16 64 256; do
      "$python" "${ref[@]}" --impl compiled --batch "$batch" --precision "$precision" --compile-only \
        >"$out/compile-$precision-$batch.log" 2>&1 &
      pids+=($!)
    done
  done
  wait "${pids[@]}"
}
export -f warm_compiled
export python out
export ref_args="${ref[*]}"
piece 150 torch-compile-warm bash -c 'ref=($ref_args); warm_compiled; echo "{}"'
# 1. runner eager, one process per precision; the fp32 one also times the
#    data side and greedy decoding (256 windows: one evaluation batch).
piece 45 runner-eager-fp32 "${run[@]}" --precision fp32 --greedy-windows 256
piece 35 runner-eager-bf16 "${run[@]}" --precision bf16 --no-data --greedy-windows 0
# 2. runner with the whole step in a CUDA graph (and its graph-vs-eager check).
piece 45 runner-graph-fp32 "${run[@]}" --precision fp32 --cuda-graph --no-data --greedy-windows 0
piece 35 runner-graph-bf16 "${run[@]}" --precision bf16 --cuda-graph --no-data --greedy-windows 0
# 2b. T5 over the shared vocabulary (hf-t5's set-up) at hf-t5's batch of 8, eager and from a
#     graph (with its graph-vs-eager check): training uses the graph by
#     default, and hf-t5 dominates the write-up's end-to-end time. Kept out
#     of the side-by-side tables (named t5-*, not runner-*).
t5=("$runner_bin" bench train --device cuda --arch t5 --scheme shared --batch 8 --precision fp32 --steps "$steps" --warmup "$warmup" --json --no-data)
piece 40 t5-eager "${t5[@]}" --greedy-windows 256
piece 40 t5-graph "${t5[@]}" --greedy-windows 0 --cuda-graph
# 3. PyTorch eager, both implementations, all six cells.
piece 80 torch-eager "$python" "${ref[@]}" --impl transformer,handwritten --batch 16,64,256 --precision fp32,bf16 \
  --jsonl "$out/torch-eager.jsonl"
# 4. PyTorch compiled (reduce-overhead), all six cells, from the warm caches.
piece 90 torch-compiled-fp32 "$python" "${ref[@]}" --impl compiled --batch 16,64,256 --precision fp32 \
  --jsonl "$out/torch-compiled.jsonl"
piece 90 torch-compiled-bf16 "$python" "${ref[@]}" --impl compiled --batch 16,64,256 --precision bf16 \
  --jsonl "$out/torch-compiled.jsonl"

shopt -s nullglob
reports=("$out"/runner-*.json "$out"/*.jsonl)
if [ ${#reports[@]} -gt 0 ]; then
  "$python" benches/side_by_side.py "${reports[@]}" --json "$out/side-by-side.json" >"$out/side-by-side.md" \
    2>>"$out/gpu-bench.log"
  cat "$out/side-by-side.md"
fi
for f in "$out"/runner-eager-fp32.json; do
  [ -s "$f" ] && "$python" -c '
import json, sys
r = json.load(open(sys.argv[1]))
d, g = r.get("data"), r.get("greedy")
if d: print("data: %d windows uploaded in %.3f s; gather: %s" % (d["windows"], d["upload_s"], ", ".join("batch %d %.0f batches/s" % (x["batch"], x["batches_per_s"]) for x in d["gather"])))
if g: print("greedy: %d windows x %d notes in batches of %d: %.1f windows/s" % (g["windows"], g["notes"], g["batch"], g["windows_per_s"]))
' "$f" | tee -a "$out/side-by-side.md"
done
for f in "$out"/t5-eager.json "$out"/t5-graph.json; do
  [ -s "$f" ] && "$python" -c '
import json, sys
r = json.load(open(sys.argv[1]))
for c in r.get("train", r.get("cells", [])):
    print("t5 %s batch %s %s: %s seq/s, cpu %s ms/step, graph check %s; %s" % (c.get("mode"), c.get("batch"), c.get("precision"), c.get("seq_per_s"), c.get("cpu_ms_per_step"), c.get("graph_check"), c.get("note") or ""))
g = r.get("greedy")
if g: print("t5 greedy: %d windows in batches of %d: %.1f windows/s" % (g["windows"], g["batch"], g["windows_per_s"]))
' "$f" | tee -a "$out/side-by-side.md"
done
log "finished; results in $out"
