"""Hardware block benchmarks: accumulator throughput, block latencies, yosys resources.

    python -m benchmarks.hw_blocks [--lanes 1 2 4 8] [--no-synth] [--json]

Writes benchmarks/hw_blocks.md and benchmarks/hw_blocks.json. Throughput and latency are
measured in cocotb + Verilator simulation (cycles; no wall-clock timing); resources come
from `yosys synth_xilinx` (xc7, YoWASP) through gen.backend.synth.synthesise.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from tqdm import tqdm

from gen.backend.synth import count_cells, synthesise_module
from hw.accumulator import Accumulator
from hw.event_queue import EventQueue
from hw.lif import LIFUnit
from sim.tb import accumulator as accumulator_bench, layer as layer_bench
from sim.tb.harness import run_component
from sim.tb.reference import bits_signed, current_bound, make_geometry, make_weights

HERE = Path(__file__).resolve().parent
log = logging.getLogger("benchmarks.hw_blocks")

CONV = {"kind": "conv", "in_channels": 4, "in_height": 12, "in_width": 12, "out_channels": 8,
        "kernel": 3, "stride": 1, "padding": 1}
CONV_S2 = {"kind": "conv", "in_channels": 4, "in_height": 12, "in_width": 12, "out_channels": 8,
           "kernel": 3, "stride": 2, "padding": 1}
DENSE = {"kind": "dense", "in_features": 64, "out_features": 16}
LIF_WIDTHS = dict(steps=4, leak_shift=2, kind="ternary", current_width=16, bias_width=10,
                  membrane_width=24, theta_width=12)


def accumulator_config(geometry, lanes, mode):
    g = make_geometry(geometry)
    weights = make_weights(g.weight_shape, 8, "random", 1)
    bound = current_bound(weights, 255 if mode == "pixel" else 1)
    return {"geometry": geometry, "lanes": lanes, "mode": mode, "weight_width": 8,
            "weight_style": "random", "weight_seed": 1, "current_width": bits_signed(-bound, bound)}


def layer_config(geometry, lanes):
    return {"geometry": geometry, "lanes": lanes, "kind": "ternary", "steps": 4, "leak_shift": 2,
            "weight_width": 8, "weight_style": "random", "weight_seed": 3, "queue_depth": 512}


def simulate(component, name, module, testcase, config, extra=None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        run_component(component, name, module, dict(config, **(extra or {}), report=str(report)), config,
                      "verilator", seed=1, testcase=testcase)
        return json.loads(report.read_text())


def synth(component, name) -> dict:
    """One block through gen.backend.synth's per-module synth_xilinx (xc7): LUT/FF/BRAM36/DSP."""
    import time

    build = HERE.parent / "sim_build"
    build.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=build) as tmp:
        path = Path(tmp) / f"{name}.v"
        path.write_text(verilog.convert(component, name=name, emit_src=False))
        start = time.monotonic()
        cells, _ = synthesise_module(name, [path], [], Path(tmp) / "synth", Path(tmp))
        return {**count_cells(cells), "synth_seconds": round(time.monotonic() - start, 1)}


def accumulator(config):
    return accumulator_bench.build(config)[2]


def spiking_layer(config):
    return layer_bench.build(config)[2]


def lif_unit(lanes):
    return LIFUnit(lanes=lanes, tag_width=8, **LIF_WIDTHS)


def measure(lanes_list, do_synth: bool, out: Path | None = None) -> dict:
    rows = []
    jobs = []
    for lanes in lanes_list:
        for label, geometry, mode in (("conv3x3 s1", CONV, "spike"), ("conv3x3 s2", CONV_S2, "spike"),
                                      ("dense", DENSE, "spike"), ("conv3x3 s1 pixel", CONV, "pixel")):
            jobs.append(("accumulator", label, lanes, geometry, mode))
        jobs.append(("lif_unit", "ternary T=4 k=2", lanes, None, None))
        jobs.append(("spiking_layer", "conv3x3 s1", lanes, CONV, None))
    jobs.append(("event_queue", "depth 512, 12-bit addr", 1, None, None))
    for block, label, lanes, geometry, mode in tqdm(jobs, desc="hw blocks", disable=None):
        row = {"block": block, "setting": label, "lanes": lanes}
        if block == "accumulator":
            config = accumulator_config(geometry, lanes, mode)
            comp = lambda: accumulator(config)
            row.update(simulate(comp(), "accumulator", "sim.tb.accumulator", "accumulator_throughput", config))
            row.update(simulate(comp(), "accumulator", "sim.tb.accumulator", "accumulator_latency", config))
            synth_now = label in ("conv3x3 s1", "conv3x3 s1 pixel")
        elif block == "lif_unit":
            config = dict(LIF_WIDTHS, lanes=lanes)
            comp = lambda: lif_unit(lanes)
            row.update(simulate(comp(), "lif_unit", "sim.tb.lif", "lif_latency", config))
            synth_now = True
        elif block == "spiking_layer":
            config = layer_config(geometry, lanes)
            comp = lambda: spiking_layer(config)
            row.update(simulate(comp(), "spiking_layer", "sim.tb.layer", "layer_latency", config))
            synth_now = True
        else:
            config = {"addr_width": 12, "depth": 512, "binary": False}
            comp = lambda: EventQueue(12, 512)
            row.update(simulate(comp(), "event_queue", "sim.tb.event_queue", "queue_latency", config))
            synth_now = True
        if do_synth and synth_now:
            row.update(synth(comp(), block))
        rows.append(row)
        log.info("%s", row)
        if out is not None:   # partial results survive an interrupted run
            save({"rows": rows, "lanes": lanes_list, "complete": False}, out)
    result = {"rows": rows, "lanes": lanes_list, "complete": True}
    if out is not None:
        save(result, out)
    return result


def save(result: dict, out: Path) -> None:
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(result))


def markdown(result: dict) -> str:
    lines = ["# Hardware block benchmarks", "",
             "Generated by `python -m benchmarks.hw_blocks`. Cycles are simulated (cocotb + Verilator,",
             "seed 1); resources are yosys `synth_xilinx -family xc7` (YoWASP) cell counts via",
             "`gen.backend.synth.synthesise` (LUT includes LUT-RAM, BRAM in RAMB36 units).", "",
             "Test layers: conv 4×12×12 → 8 channels, 3×3, padding 1 (stride 1 or 2); dense 64 → 16;",
             "8-bit weights. Throughput: every input neuron fires once per map, two maps, no idle input.",
             *([] if result.get("complete", True) else ["", "**Partial run: the rows below are all that finished.**"]), "",
             "## Accumulator: sustained synaptic ops per cycle (goal: P) and latency", "",
             "| setting | P | SOPs | cycles | SOPs/cycle | SOPs/cycle / P | event→idle latency |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if r["block"] == "accumulator":
            lines.append(f"| {r['setting']} | {r['lanes']} | {r['synaptic_ops']} | {r['cycles']} | "
                         f"{r['sops_per_cycle']:.3f} | {r['sops_per_cycle'] / r['lanes']:.3f} | "
                         f"{r['latency_cycles']} |")
    lines += ["", "## Latencies (cycles)", "", "| block | setting | P | latency |", "|---|---|---|---|"]
    for r in result["rows"]:
        if r["block"] in ("lif_unit", "event_queue"):
            lines.append(f"| {r['block']} | {r['setting']} | {r['lanes']} | {r['latency_cycles']} (in → out valid) |")
        elif r["block"] == "spiking_layer":
            lines.append(f"| spiking_layer | {r['setting']} | {r['lanes']} | eos in → eos out: "
                         f"{r['empty_step_cycles']} (empty step), {r['full_step_cycles']} (every input fires) |")
    lines += ["", "## Resources (yosys synth_xilinx, xc7)", "",
              "| block | setting | P | LUT | FF | BRAM36 | DSP | synth s |", "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if "luts" in r:
            lines.append(f"| {r['block']} | {r['setting']} | {r['lanes']} | {r['luts']} | {r['ffs']} | "
                         f"{r['bram36']:g} | {r['dsps']} | {r['synth_seconds']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--no-synth", action="store_true", help="skip yosys synthesis")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--out", type=Path, default=HERE / "hw_blocks", help="report path without suffix")
    args = parser.parse_args(argv)
    bad = [p for p in args.lanes if p < 1 or 8 % p]
    if bad:
        print(f"error: --lanes must divide 8 (the test layers' output channels), not {bad}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    result = measure(args.lanes, not args.no_synth, args.out)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
