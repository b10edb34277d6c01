"""Build an hw component to Verilog and run its cocotb testbench, with one cached build per
parameter set under sim_build/ (rebuilt only when the generated Verilog changes)."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from amaranth.back import verilog

from sim.runner import build_lock, run_testbench, write_if_changed
from sim.toolchain import fix_verilator_pch

ROOT = Path(__file__).resolve().parents[2]
SIM_BUILD = ROOT / "sim_build"


def build_key(name: str, config: dict) -> str:
    digest = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{name}-{digest}"


DUMP_MODULE_REG = re.compile(r"reg (\\\$auto\$verilog_backend\S*dump_module\$\d+) += 0;")


def kick_comb_blocks_at_time_zero(text: str) -> str:
    """For Icarus: yosys makes every `always @*` read a dummy reg initialised to 0, but
    Icarus applies declaration initialisers before the always blocks wait, so a block whose
    inputs keep their initial values never runs and its outputs stay X. Toggling the dummy
    once at #0 runs every such block; the design itself is unchanged."""
    return DUMP_MODULE_REG.sub(lambda m: f"reg {m.group(1)} = 0;\n  initial #0 {m.group(1)} = 1;", text)


def run_component(component, name: str, test_module: str, params: dict, config: dict,
                  simulator: str = "verilator", seed: int | None = None, testcase: str | None = None):
    """`config` identifies the hardware (the build is cached on it); `params` go to the TB."""
    key = build_key(name, config)
    base = SIM_BUILD / simulator / key
    text = verilog.convert(component, name=name, emit_src=False)
    if simulator == "icarus":
        text = kick_comb_blocks_at_time_zero(text)
    else:
        fix_verilator_pch()
    # One build folder per (component, config): two test processes (pytest-xdist workers) that
    # reach the same one take turns, so neither reads the other's half-built model or results.
    with build_lock(base):
        source = write_if_changed(base / f"{name}.v", text)
        return run_testbench([source], name, test_module, base / "build", params=params,
                             simulator=simulator, seed=seed, testcase=testcase)
