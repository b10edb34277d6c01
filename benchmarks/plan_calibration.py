"""The plan's resource estimate against yosys, one layer engine at a time.

    .venv/bin/python -m benchmarks.plan_calibration [--model examples/mnist_ternary_t2.pt]
        [--lanes 1 2 4 8 16 32] [--layers conv2 conv3] [--json]

For every layer of the model and every lane count asked for (that divides its channels),
elaborates the layer's engine exactly as `gen build` does (same module name, same input
queue depth, so the synthesis cache is shared with real builds), synthesises it alone
with `gen.backend.synth.synthesise_module` and sets the cells beside `LayerPlan.estimate`.
Writes benchmarks/plan_calibration.json and .md. The estimate must never be below
synthesis for BRAM (the resource that binds on the PYNQ-Z2) and should be close.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gen.boards import get_board  # noqa: E402 (after the path: runs as a script from a checkout)
from gen.flow.build import plan_images  # noqa: E402
from gen.backend.emit import build_engine, module_name, write_module  # noqa: E402
from gen.frontend import compile_checkpoint  # noqa: E402
from gen.plan import make_plan  # noqa: E402
from gen.backend.synth import count_cells, synthesise_module  # noqa: E402
HERE = REPO / "benchmarks"
KEYS = ("luts", "ffs", "bram36", "dsps")


def calibrate(model: Path, lanes_list, layers=None, images: int = 32, workdir: Path | None = None) -> list[dict]:
    net = compile_checkpoint(model).network
    imgs, _ = plan_images(net, images)
    board = get_board("pynq-z2")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(workdir or scratch).resolve()
        tmp.mkdir(parents=True, exist_ok=True)
        for i, layer in enumerate(net.layers):
            if layers and layer.name not in layers:
                continue
            for p in lanes_list:
                if layer.channels % p:
                    continue
                plan = make_plan(net, board, {l.name: (p if l is layer else 1) for l in net.layers}, imgs)
                lp = plan.layers[i]
                engine = build_engine(net, lp, plan.layers[i - 1].queue_depth if i else 0)
                module = module_name(layer.name)
                il = tmp / f"{module}.il"
                write_module(engine, module, tmp / f"{module}.v", il)
                start = time.monotonic()
                cells, cached = synthesise_module(module, [il], [], tmp / f"{module}_{p}", tmp)
                seconds = time.monotonic() - start
                got = count_cells(cells)
                rows.append({"layer": layer.name, "kind": layer.kind, "lanes": p, "estimate": lp.estimate,
                             "synthesis": got, "cached": cached, "seconds": round(seconds, 1),
                             "memories": [[m.name, m.depth, m.width] for m in lp.memories],
                             "cells": {k: v for k, v in cells.items() if "RAM" in k or "DSP" in k}})
                e = lp.estimate
                print(f"{layer.name:6} P={p:3}  " + "  ".join(
                    f"{k} {e[k]:>7g}/{got[k]:<7g}" for k in KEYS) + f"  ({seconds:.0f} s{', cached' if cached else ''})",
                    file=sys.stderr)
    return rows


def git_head() -> str:
    import subprocess
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def markdown(rows, command: str) -> str:
    lines = ["# The plan's resource estimate vs yosys, per layer engine", "",
             f"`{command}` (at commit {git_head()}): each layer engine of the shipped example "
             "synthesised alone (yosys `synth_xilinx -family xc7`, as `gen build` runs it), beside "
             "`gen.plan`'s estimate for it: estimate / synthesis. The estimate must never be below "
             "synthesis; BRAM36 follows yosys's own memory mapping and should match it exactly. "
             "`tests/test_build_plan.py` checks both on these rows.", "",
             "| layer | lanes | LUT | FF | BRAM36 | DSP | BRAM36 ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        e, s = r["estimate"], r["synthesis"]
        ratio = f"{e['bram36'] / s['bram36']:.2f}" if s["bram36"] else "—"
        lines.append(f"| {r['layer']} | {r['lanes']} | " + " | ".join(
            f"{e[k]:,g} / {s[k]:,g}" for k in KEYS) + f" | {ratio} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=REPO / "examples" / "mnist_ternary_t2.pt")
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    ap.add_argument("--layers", nargs="+")
    ap.add_argument("--workdir", type=Path, help="keep each synthesis's yosys.log and stat.json here")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    rows = calibrate(args.model, args.lanes, args.layers, workdir=args.workdir)
    command = "python -m benchmarks.plan_calibration " + " ".join(argv if argv is not None else sys.argv[1:])
    (HERE / "plan_calibration.json").write_text(json.dumps({"command": command.strip(), "rows": rows}, indent=1) + "\n")
    (HERE / "plan_calibration.md").write_text(markdown(rows, command.strip()))
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
