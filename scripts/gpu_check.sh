#!/usr/bin/env bash
# One short GPU check for a session lent a CUDA machine (the device tool runs it in the repo root):
#   GPU kernel tests against the CPU reference, then the neuron benchmark on the GPU.
# It uses that machine's own python3 (PyTorch + Triton preinstalled) with the repo on PYTHONPATH;
# the peers (spikingjelly, snntorch, norse) can travel as wheels in .whl/ (see the device tool's
# README); rows whose library is missing are reported as such by the benchmark.
# Results go to $OUT (the device tool's folder that comes back), else ./gpu-out.
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv;
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"; } \
  2>&1 | tee "$OUT/env.txt"
python3 -m pytest tests/test_ops_cuda.py -q -p no:cacheprovider -x 2>&1 | tee "$OUT/tests.txt"
python3 -m quadfire.bench.neurons --device cuda 2>&1 | tee "$OUT/bench-neurons.txt"
