#!/usr/bin/env bash
# The prepared GPU check (issue 19 item 4; bench/gpu_check.py says what it measures), for one
# H100/H200 machine: at most 8 minutes. Writes gpu_check.{json,md} to $OUT (the device tool's
# folder that comes back) or bench/out. Uses the repository's .venv when there is one, else the
# machine's python3 (the GPU image's holds torch, pyyaml, pandas); no install step.
#   bash bench/gpu.sh            # on the GPU machine
#   bash bench/gpu.sh --dry      # anywhere: CPU, tiny shapes, the script end to end
set -euo pipefail
cd "$(dirname "$0")/.."
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
export PYTHONPATH="$PWD:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
exec timeout 480 "$py" -m bench.gpu_check "$@"
