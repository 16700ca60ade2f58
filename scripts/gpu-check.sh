#!/usr/bin/env bash
# Checks a `runner` binary built elsewhere on a GPU machine (FACTS.md section 9).
#
# The GPU machines have PyTorch 2.11.0+cu130 but no cargo and no network, so:
#   1. here:  scripts/setup                 (builds target/release/runner)
#   2. carry target/release/runner and target/release/runner-worker (which
#      runner starts beside itself) to the GPU machine with the working tree
#      (device tool: carry ["target/release/runner", "target/release/runner-worker"])
#   3. there: scripts/gpu-check.sh
#
# It prints the libtorch in use, whether CUDA is available, and runs a small
# computation on every GPU, compared with the CPU. Exit 0 only when CUDA is
# available and every device agrees with the CPU.
#
#   RUNNER_BIN    the binary (default target/release/runner)
#   TORCH_LIB     libtorch's lib folder there
#                 (default /opt/torch/.venv/lib/python3.12/site-packages/torch/lib)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${RUNNER_BIN:-$repo/target/release/runner}
torch_lib=${TORCH_LIB:-/opt/torch/.venv/lib/python3.12/site-packages/torch/lib}

[ -x "$bin" ] || { echo "gpu-check: no runner binary at $bin (build it with scripts/setup and carry it)" >&2; exit 1; }
[ -f "$torch_lib/libtorch_cuda.so" ] || { echo "gpu-check: no libtorch_cuda.so in $torch_lib (set TORCH_LIB)" >&2; exit 1; }
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$bin" info --check-devices | tee /dev/stderr | grep -q '^CUDA available: yes' \
  || { echo "gpu-check: CUDA is not available to runner" >&2; exit 1; }

# The GPU-only tests (`#[ignore = "needs CUDA"]`), when the test binary of
# runner-train was carried too (`cargo test --release --no-run -p
# runner-train` prints its path; RUNNER_TRAIN_TESTS names it).
tests=${RUNNER_TRAIN_TESTS:-}
if [ -z "$tests" ]; then
  for candidate in "$repo"/target/release/deps/runner_train-*; do
    [ -x "$candidate" ] && [ -f "$candidate" ] && tests=$candidate
  done
fi
if [ -n "$tests" ]; then
  "$tests" --ignored --test-threads 1 || { echo "gpu-check: a GPU-only test failed" >&2; exit 1; }
else
  echo "gpu-check: no runner-train test binary carried: the GPU-only tests did not run" >&2
fi
echo "gpu-check: ok"
