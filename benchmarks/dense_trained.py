"""The dense streaming engines with TRAINED weights, synthesised one engine at a time exactly
as `gen build` emits them (same module name, same RTLIL, so a build's synthesis reuses this
cache), beside the dense family's cost model and the weight statistics the model reads.
benchmarks/dense_engine.py puts these rows beside the random-weight ones; alone, this warms
the cache (and prints each row):

    nice .venv/bin/python benchmarks/dense_trained.py [--only fast:conv3:3 ...]

The settings are those that put the fast model (examples/mnist_fast_t1.pt, 4-bit, T = 1)
under 1,000 cycles/image (100,000 images/s at 100 MHz) and the shipped example
(examples/mnist_ternary_t2.pt, 8-bit, T = 2) under 10,000. yosys is slow on shared cores:
every engine is synthesised once and cached by its RTLIL (gen.backend.synth's cache).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amaranth.back import rtlil  # noqa: E402

from gen.backend.emit import build_engine, module_name  # noqa: E402
from gen.backend.synth import count_cells, synthesise_module  # noqa: E402
from gen.boards import get_board  # noqa: E402
from gen.engines import engine_named  # noqa: E402
from gen.frontend import compile_checkpoint  # noqa: E402
from gen.plan import make_plan  # noqa: E402

EXAMPLES = {"fast": ("examples/mnist_fast_t1.pt", 4), "shipped": ("examples/mnist_ternary_t2.pt", 8)}
# (example, layer, lanes): conv1 24 / conv2 12 / conv3 3 or 4 give the fast model <= 994
# cycles/image; conv1 8 / conv2 4 / conv3 1 give the shipped one <= 6,692.
SETTINGS = (("fast", "conv1", 24), ("fast", "conv2", 12), ("fast", "conv3", 3),
            ("shipped", "conv1", 8), ("shipped", "conv2", 4), ("shipped", "conv3", 1))


def weight_stats(weights: np.ndarray, lanes: int) -> dict:
    """Share of zero, ±1, ±2 weights and, per tap of a lane (the O/lanes groups it time-shares),
    the mean number of distinct nonzero values: what a constant-weight tap has to choose from."""
    w = np.asarray(weights).reshape(weights.shape[0], -1)
    groups = w.shape[0] // lanes
    per_tap = w.reshape(groups, lanes, -1)           # [group, lane, tap]
    distinct = [len(set(int(v) for v in per_tap[:, j, t]) - {0}) for j in range(lanes) for t in range(w.shape[1])]
    return {"zero": round(float((w == 0).mean()), 3), "pm1": round(float((np.abs(w) == 1).mean()), 3),
            "pm2": round(float((np.abs(w) == 2).mean()), 3), "groups": groups,
            "distinct_nonzero_per_tap": round(float(np.mean(distinct)), 3)}


def measure(example: str, layer: str, lanes: int, workdir: Path, nets: dict) -> dict:
    path, wbits = EXAMPLES[example]
    if example not in nets:
        nets[example] = compile_checkpoint(ROOT / path, wbits=wbits).network
    net = nets[example]
    families = {l.name: "dense" for l in net.layers}
    plan = make_plan(net, get_board("pynq-z2"), lanes={layer: lanes}, families=families)
    lp = plan.layer(layer)
    module = module_name(layer)
    il = workdir / f"{example}_{module}_p{lanes}.il"
    il.write_text(rtlil.convert(build_engine(net, lp), name=module, emit_src=False))
    start = time.monotonic()
    cells, cached = synthesise_module(module, [il], [], workdir / il.stem, workdir)
    hw_weights = engine_named(lp.engine).arguments(net.layer(layer), lp, net.wbits, net.timesteps, 0)["weights"]
    g = lp.geometry
    return {"weights": f"trained ({example})", "example": example, "engine": lp.engine,
            "layer": f"{layer}: {g.in_shape[0]}->{g.out_channels}, {g.in_shape[1]}x{g.in_shape[2]}, stride {g.stride}",
            "lanes": lanes, "wbits": net.wbits, "steps": net.timesteps, "widths": lp.widths,
            "synth": count_cells(cells), "estimate": lp.estimate, "cycles_per_image": lp.cycles,
            "images_per_s_at_100MHz": round(100e6 / lp.cycles),
            "weight_stats": weight_stats(np.asarray(hw_weights), lanes), "cells": cells,
            "synth_seconds": round(time.monotonic() - start, 1), "cached": cached}


def parse_only(text: str):
    example, layer, lanes = text.split(":")
    return example, layer, int(lanes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=parse_only, nargs="+", default=None, metavar="EXAMPLE:LAYER:LANES")
    args = parser.parse_args(argv)
    settings = args.only or SETTINGS
    (ROOT / "sim_build").mkdir(exist_ok=True)
    nets, rows = {}, []
    with tempfile.TemporaryDirectory(dir=ROOT / "sim_build") as tmp:     # ignored by git; yosys wants it below ROOT
        for example, layer, lanes in settings:
            row = measure(example, layer, lanes, Path(tmp), nets)
            print(json.dumps({k: row[k] for k in ("example", "layer", "lanes", "synth", "estimate", "weight_stats",
                                                  "synth_seconds", "cached")}), flush=True)
            rows.append(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
