"""Throughput table (issue 14): the fast and the shipped examples built for the PYNQ-Z2 and
simulated cycle by cycle on all 2,000 held-out images back to back, beside published FPGA
MNIST accelerators, measured in one run.

    .venv/bin/python benchmarks/throughput.py [--images 2000] [--event-images 500]
        [--only fast,shipped,event] [--no-synth] [--reuse] [--chunk 500]
    .venv/bin/python benchmarks/throughput.py --table-only   # the Fmax column again, after a place and route

For each configuration: `gen build` (the planner's choice, or the rate target), yosys
resources and fit from the build's report, images/s and latency from the Verilator run of
the generated Verilog (every result compared with the golden model: a mismatch fails the
run), accuracy on the held-out images, the engine family per layer, and the place-and-route
Fmax on the ECP5 stand-in where benchmarks/fmax_ecp5.json has one for that build.

The `event` configuration (`--event-images`) is the shipped example on the event-driven engines only: its
intervals between results, image by image, against the events of its bottleneck layer,
show how an event engine's cycles grow with the spikes it is sent (a least-squares line and
its R²).

Writes benchmarks/throughput.json and benchmarks/throughput.md. Nothing is timed on the
host: every rate is simulated cycles at the board's 100 MHz clock.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.atomic import write_atomically  # noqa: E402 (after the path: runs as a script from a checkout)
from benchmarks.mnist_sim import fmt  # noqa: E402
from benchmarks.sim_reports import merge  # noqa: E402
from gen.flow.build import build as gen_build  # noqa: E402
from gen.ir.golden import run as golden_run  # noqa: E402
from sim.network import load_build, load_images, simulate_build  # noqa: E402

RESULTS = REPO / "benchmarks" / "throughput.json"
TABLE = REPO / "benchmarks" / "throughput.md"
FMAX = REPO / "benchmarks" / "fmax_ecp5.json"
FAST = REPO / "examples" / "mnist_fast_t1.pt"
SHIPPED = REPO / "examples" / "mnist_ternary_t2.pt"
EVENT_LAYERS = ("conv1", "conv2", "conv3", "fc")

# name -> (model, gen build keyword arguments, what it shows)
CONFIGS = {
    "fast": (FAST, {"target_fps": 100_000}, "the co-designed model at the issue's rate target"),
    "shipped": (SHIPPED, {}, "the shipped example, the planner's default"),
    "event": (SHIPPED, {"engines": {name: "event" for name in EVENT_LAYERS}},
              "the shipped example on event-driven engines only"),
}

ANCHORS = [
    {"name": "FINN LFC-W1A1 (binarised MLP)", "board": "Pynq-Z1 (xc7z020), 100 MHz", "accuracy": 98.47,
     "images_per_second": 118_883, "source": "Umuroglu et al., FINN, FPGA 2017"},
    {"name": "DeepFire (SNN)", "board": "Virtex/Kintex UltraScale-class, 375-500 MHz", "accuracy": 99.14,
     "images_per_second": 40_100, "source": "Aung et al., DeepFire, FPL 2021"},
    {"name": "Spiker+ (SNN)", "board": "PYNQ-class Artix-7", "accuracy": 93.85,
     "images_per_second": 1e6 / 780, "latency_us": 780, "source": "Carpegna et al., Spiker+, 2024"},
]


def fmax_for(model_name: str, plan_lanes: dict) -> dict | None:
    """The ECP5 place-and-route result recorded for this build (same model and lanes): the whole
    top's if it was placed, else the slowest engine's once every engine was placed alone
    (between engines the top adds only registered FIFOs and skid buffers), else None."""
    if not FMAX.is_file():
        return None
    data = json.loads(FMAX.read_text())
    runs = data.get("runs", [data]) if isinstance(data, dict) else data
    runs = [r for r in runs if r.get("model") == model_name and r.get("lanes") == plan_lanes]
    whole = [r for r in runs if r.get("module", "tern_top") == "tern_top"]
    if whole:
        return whole[0]
    engines = {r["module"]: r for r in runs}
    if not runs or set(engines) != {f"tern_{name}" for name in plan_lanes}:
        return None
    slowest = min(engines.values(), key=lambda r: r["fmax_mhz"])
    return dict(slowest, critical_path=dict(slowest["critical_path"], module=slowest["module"],
                                            note="the slowest engine, each placed alone"))


def build_config(name: str, out: Path, synthesise: bool, reuse: bool) -> dict:
    model, kwargs, _ = CONFIGS[name]
    if not (reuse and (out / "report.json").is_file()):
        gen_build(model, out=out, synthesise=synthesise, progress=lambda m: print(m, file=sys.stderr, flush=True),
                  **kwargs)
    return json.loads((out / "report.json").read_text())


def simulate(out: Path, images: int, chunk: int, seed: int) -> tuple[dict, list[float]]:
    """Merged sim report of `images` held-out images (chunks of `chunk`), and every result's cycle."""
    chunks, result_cycles = [], []
    for first in range(0, images, chunk):
        count = min(chunk, images - first)
        result = simulate_build(out, count, start=first, seed=seed + first, progress=True, quiet=True,
                                report=out / f"throughput_{first:04d}.json")
        if not result.ok:
            raise SystemExit(f"{out}: {len(result.mismatches)} mismatches in images {first}..{first + count - 1}: "
                             f"{[str(m) for m in result.mismatches[:3]]}")
        chunks.append(result.report)
        result_cycles.append(result.report["result_cycles"])
        print(f"{out.name}: {first + count}/{images} images bit-exact", file=sys.stderr, flush=True)
    return merge(chunks), result_cycles


def linearity(out: Path, build_report: dict, result_cycles: list[list[int]]) -> dict:
    """Each back-to-back interval between results against the events its image sent into the
    bottleneck layer (the layer whose work sets the interval), least squares."""
    build = load_build(out)
    name = build_report["bottleneck"]
    layer_index = [l.name for l in build.net.layers].index(name)
    source = build.net.layers[layer_index - 1].name if layer_index else None
    xs, ys = [], []
    start = 0
    for cycles in result_cycles:
        n = len(cycles)
        pixels, _, _ = load_images(build.net, n, start)
        golden = golden_run(build.net, pixels, record=True)
        events_in = golden.events[source].sum(axis=1) if source else None
        for i in range(1, n):
            xs.append(float(events_in[i]))
            ys.append(float(cycles[i] - cycles[i - 1]))
        start += n
    x, y = np.array(xs), np.array(ys)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    r2 = 1 - float(residual @ residual) / float(((y - y.mean()) ** 2).sum())
    return {"layer": name, "input_events_from": source, "images": len(x), "slope_cycles_per_event": round(slope, 4),
            "intercept_cycles": round(intercept, 1), "r2": round(r2, 4),
            "events_min": int(x.min()), "events_max": int(x.max()),
            "interval_min": int(y.min()), "interval_max": int(y.max())}


def row(name: str, report: dict, build_report: dict, fmax: dict | None) -> dict:
    res = build_report.get("resources") or {}
    return {
        "config": name, "what": CONFIGS[name][2], "model": report["model"], "images": report["images"],
        "mismatches": report["mismatches"], "accuracy": round(100 * report["accuracy"], 2),
        "cycles_per_image": report["cycles_per_image"], "images_per_second": report["images_per_second_at_100mhz"],
        "latency_cycles": report["latency_cycles"],
        "latency_us": round(report["latency_cycles"] / build_report["clock_mhz"], 2),
        "engines": {l["name"]: f"{l['engine']}×{l['lanes']}" for l in build_report["layers"]},
        "resources": {k: res[k]["used"] for k in ("luts", "ffs", "bram36", "dsps") if k in res},
        "fits": build_report.get("fits"),
        "fmax_mhz": fmax.get("fmax_mhz") if fmax else None,
        "critical_path": fmax.get("critical_path") if fmax else None,
    }


def keep_earlier(rows: list[dict], lin: dict | None, names: list[str]) -> tuple[list[dict], dict | None]:
    """This run's rows beside the recorded rows of the configurations it did not run (each row
    keeps the command and commit that measured it), in CONFIGS order; likewise the event line."""
    earlier = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for old in earlier.get("rows", []):
        if old["config"] in CONFIGS and old["config"] not in names:
            rows.append(dict(old, command=old.get("command", earlier.get("command", "?"))))
    if lin is None and "event" not in names:
        lin = earlier.get("event_linearity")
    order = list(CONFIGS)
    return sorted(rows, key=lambda r: order.index(r["config"])), lin



def slowest_engine(r: dict) -> str:
    """" (conv2, slowest engine)" when the Fmax is an engine's placed alone, else ""."""
    path = r.get("critical_path") or {}
    return f" ({path['module'].removeprefix('tern_')}, slowest engine)" if "note" in path else ""


def markdown(rows: list[dict], lin: dict | None) -> str:
    runs: dict[tuple, list[str]] = {}
    for r in rows:
        runs.setdefault((r.get("command", "?"), r.get("git", "?")), []).append(r["config"])
    made = [f"`{command}` (git {git}: {', '.join(configs)})" for (command, git), configs in runs.items()]
    lines = ["# Throughput: Tern's examples beside published MNIST accelerators", "",
             f"Produced by {'; '.join(made) or '?'}. Tern's rates are "
             "cycle-accurate Verilator simulation of the generated Verilog, images back to back, at the "
             "PYNQ-Z2 build's 100 MHz clock, every result bit-exact against the golden model; resources are "
             "yosys `synth_xilinx` of the whole build (Vivado's figures will differ); Fmax is nextpnr-ecp5 "
             "place and route on the ECP5 stand-in (benchmarks/fmax_ecp5.py) where one was run for that build: "
             "the whole top's, or, where every engine was placed alone, the slowest engine's. A place-and-route "
             "result is matched to a build by its model and lanes only: the commit it was placed at is in "
             "benchmarks/fmax_ecp5.md's findings.",
             "", "| design | images | accuracy | images/s | latency | engines (family×lanes) | LUT | FF | BRAM36 "
             "| DSP | fits xc7z020 | Fmax ECP5 |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        res = r["resources"]
        engines = ", ".join(f"{k} {v}" for k, v in r["engines"].items())
        lines.append(f"| Tern {r['model']} ({r['config']}: {r['what']}) | {r['images']:,} ({r['mismatches']} "
                     f"mismatches) | {r['accuracy']:.2f} % | {r['images_per_second']:,.0f} | "
                     f"{r['latency_us']:,.1f} µs | {engines} | {fmt(res.get('luts'), ',')} | {fmt(res.get('ffs'), ',')} "
                     f"| {fmt(res.get('bram36'))} | {fmt(res.get('dsps'))} | {fmt(r['fits'])} | "
                     f"{fmt(r['fmax_mhz'], '.1f')}{' MHz' if r['fmax_mhz'] else ''}{slowest_engine(r)} |")
    for a in ANCHORS:
        lines.append(f"| {a['name']}, {a['board']} | – | {a['accuracy']:.2f} % | {a['images_per_second']:,.0f} | "
                     f"{fmt(a.get('latency_us'), ',.0f')}{' µs' if a.get('latency_us') else ''} | – | – | – | – | – | – | – |")
    lines += ["", "Anchors: " + "; ".join(f"{a['name']}: {a['source']}" for a in ANCHORS) + "."]
    if lin:
        lines += ["", "## Event-driven engines: cycles grow with events", "",
                  f"The `event` build, {lin['images']:,} back-to-back intervals between results: the interval "
                  f"against the events its image sent into the bottleneck layer {lin['layer']} (from "
                  f"{lin['input_events_from']}): {lin['slope_cycles_per_event']} cycles per event "
                  f"{'+' if lin['intercept_cycles'] >= 0 else '−'} {abs(lin['intercept_cycles']):,} cycles, "
                  f"R² = {lin['r2']} (events {lin['events_min']:,}–"
                  f"{lin['events_max']:,}, intervals {lin['interval_min']:,}–{lin['interval_max']:,} cycles)."]
    return "\n".join(lines) + "\n"


def row_lanes(r: dict) -> dict:
    """A row's lanes per layer, from its engines column ("dense×24")."""
    return {name: int(engine.split("×")[1]) for name, engine in r["engines"].items()}


def with_current_fmax(r: dict) -> dict:
    """The row with the place-and-route result recorded now for its build (model and lanes)."""
    fmax = fmax_for(r["model"], row_lanes(r))
    return dict(r, fmax_mhz=fmax.get("fmax_mhz") if fmax else None,
                critical_path=fmax.get("critical_path") if fmax else None)


def rewrite_table() -> int:
    if not RESULTS.is_file():
        print(f"{RESULTS}: no results yet; run benchmarks/throughput.py first", file=sys.stderr)
        return 2
    results = json.loads(RESULTS.read_text())
    results["rows"] = [with_current_fmax(r) for r in results["rows"]]
    write_atomically(RESULTS, json.dumps(results, indent=2) + "\n")
    write_atomically(TABLE, markdown(results["rows"], results.get("event_linearity")))
    print(TABLE.read_text())
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=2000, help="held-out images of the fast and shipped runs (default 2000)")
    p.add_argument("--event-images", type=int, default=500,
                   help="held-out images of the event run (default 500: at about 70,000 cycles an image its "
                        "2,000 would take hours; 500 give 499 intervals for the line)")
    p.add_argument("--only", default=",".join(CONFIGS), help=f"configurations (default {','.join(CONFIGS)})")
    p.add_argument("--no-synth", dest="synth", action="store_false", help="skip synthesis (no resources)")
    p.add_argument("--reuse", action="store_true", help="reuse existing build folders")
    p.add_argument("--chunk", type=int, default=500, help="images per simulator run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--table-only", action="store_true",
                   help="only rewrite throughput.md from throughput.json, each row's Fmax looked up again in "
                        "fmax_ecp5.json (after a place and route ran)")
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        p.error(f"unknown configuration(s) {unknown}; choose from {sorted(CONFIGS)}")
    for option in ("images", "event_images", "chunk"):
        if getattr(args, option) < 1:
            p.error(f"--{option.replace('_', '-')} must be at least 1, not {getattr(args, option)}")
    if args.table_only:
        return rewrite_table()
    command = " ".join([".venv/bin/python benchmarks/throughput.py", *(sys.argv[1:] if argv is None else argv)])
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    rows, lin, start = [], None, time.monotonic()
    for name in names:
        out = REPO / "build" / f"throughput-{name}"
        build_report = build_config(name, out, args.synth, args.reuse)
        report, cycles = simulate(out, args.event_images if name == "event" else args.images, args.chunk, args.seed)
        lanes = {l["name"]: l["lanes"] for l in report["layers"]}
        rows.append(dict(row(name, report, build_report, fmax_for(report["model"], lanes)), git=git, command=command))
        if name == "event":
            lin = linearity(out, build_report, cycles)
    rows, lin = keep_earlier(rows, lin, names)
    results = {"command": command, "git": git, "seconds": round(time.monotonic() - start, 1), "rows": rows,
               "event_linearity": lin, "anchors": ANCHORS}
    write_atomically(RESULTS, json.dumps(results, indent=2) + "\n")
    write_atomically(TABLE, markdown(rows, lin))
    print(TABLE.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
