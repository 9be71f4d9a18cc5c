#!/usr/bin/env bash
# GPU check for any CUDA machine, run from the repository root: `bash scripts/gpu_check.sh [DIR]`.
#   GPU kernel tests against the CPU reference, then the neuron benchmark on the GPU.
# It uses the machine's python3 (PyTorch + Triton installed) with the repo on PYTHONPATH; wheels
# placed in .whl/ (e.g. the peers spikingjelly, snntorch, norse) are installed first; rows whose
# library is missing are reported as such by the benchmark.
# Results go to DIR (default ./gpu-out).
set -uo pipefail
dir=${1:-gpu-out}
mkdir -p "$dir"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv;
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"; } \
  2>&1 | tee "$dir/env.txt"
python3 -m pytest tests/test_ops_cuda.py -q -p no:cacheprovider -x 2>&1 | tee "$dir/tests.txt"
python3 -m quadfire.cli bench neurons --device cuda 2>&1 | tee "$dir/bench-neurons.txt"
