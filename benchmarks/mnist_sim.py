"""Build the shipped MNIST example, simulate all 2,000 held-out images, and set the measured
figures beside published FPGA MNIST accelerators on the same board class.

    .venv/bin/python benchmarks/mnist_sim.py [--model examples/mnist_ternary_t2.pt]
        [--out build/mnist_ternary_t2] [--images 2000] [--no-synth] [--reuse] [--json]

Writes benchmarks/mnist_sim.json and docs/measured.md (the README's "Measured" section,
with the command that produced it). Accuracy, cycles and latency come from the cycle-exact
simulation of the generated Verilog (Verilator), images per second assume the 100 MHz
fabric clock of the PYNQ-Z2 build, resources come from the build's yosys synthesis
(report.json). Nothing here is timed on the host: the figures are simulated cycles.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gen.flow.build import build as gen_build  # noqa: E402 (after the path: runs as a script from a checkout)
from sim.network import simulate_build  # noqa: E402
from benchmarks.sim_reports import merge  # noqa: E402

DEFAULT_MODEL = REPO / "examples" / "mnist_ternary_t2.pt"
RESULTS = REPO / "benchmarks" / "mnist_sim.json"
MEASURED = REPO / "docs" / "measured.md"

# Published anchors (MNIST, PYNQ-class Zynq-7000 / Artix-7 boards).
ANCHORS = [
    {"name": "FINN LFC-W1A1 (binarised MLP)", "board": "Pynq-Z1 (xc7z020), 100 MHz",
     "accuracy": 98.47, "images_per_second": 118_883, "latency_us": None,
     "source": "FINN / BNN-PYNQ (Umuroglu et al., FPGA 2017)"},
    {"name": "Spiker+ (SNN)", "board": "PYNQ-class Artix-7",
     "accuracy": 93.85, "images_per_second": 1e6 / 780, "latency_us": 780,
     "source": "Spiker+ (Carpegna et al., 2024)"},
]


def build(model: Path, out: Path, synthesise: bool, reuse: bool) -> float:
    if reuse and (out / "manifest.json").is_file():
        return 0.0

    start = time.monotonic()
    gen_build(model, out=out, synthesise=synthesise,
              progress=lambda message: print(message, file=sys.stderr, flush=True))
    return time.monotonic() - start


def fmt(value, spec=""):
    return "–" if value is None else format(value, spec)


def table(rows) -> str:
    lines = ["| design | board | MNIST accuracy | images/s | latency | lanes | LUT | FF | BRAM36 | DSP |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['board']} | {fmt(r['accuracy'], '.2f')} % | "
                     f"{fmt(r['images_per_second'], ',.0f')} | "
                     f"{'–' if r.get('latency_us') is None else format(r['latency_us'], ',.1f') + ' µs'} | "
                     f"{r.get('lanes', '–')} | {r.get('luts', '–')} | {r.get('ffs', '–')} | "
                     f"{r.get('bram36', '–')} | {r.get('dsps', '–')} |")
    return "\n".join(lines)


def measured_row(report: dict, build_report: dict) -> dict:
    row = {"name": f"Tern: {report['model']}", "board": f"{build_report['board']} ({build_report['part']}), "
                                                      f"{build_report['clock_mhz']:g} MHz (simulated)",
           "accuracy": 100 * report["accuracy"], "images_per_second": report["images_per_second_at_100mhz"],
           "latency_us": report["latency_cycles"] / build_report["clock_mhz"],
           "lanes": ", ".join(f"{l['name']}={l['lanes']}" for l in report["layers"])}
    res = build_report.get("resources")
    if res:
        for key in ("luts", "ffs", "bram36", "dsps"):
            row[key] = f"{res[key]['used']:,g} ({res[key]['percent']} %)"
    return row


def utilisation(layer: dict) -> str:
    """An event engine's lane utilisation; a dense engine's is not defined (sim.network)."""
    share = layer.get("lane_utilisation")
    return "–" if share is None else f"{100 * share:.1f} %"


def markdown(command: str, report: dict, build_report: dict, rows, seconds: float) -> str:
    layers = "\n".join(f"| {l['name']} | {l['kind']} | {l['lanes']} | {l['sops_per_image']:,.0f} | "
                       f"{fmt(l['events_per_image'], ',.0f')} | {utilisation(l)} |"
                       for l in report["layers"])
    est = report.get("estimate") or {}
    partial = "" if report["images"] == 2000 else \
        f" (the first {report['images']:,} of the 2,000: the run was stopped at the session's end)"
    resources = ("Resources: yosys `synth_xilinx` on the generated Verilog (Vivado's figures will differ)."
                 if build_report.get("resources") else
                 "Resources: this run was built with `--no-synth`, so the table has none; "
                 "`python -m gen build` without it reports them (yosys `synth_xilinx`).")
    return f"""## Measured

The shipped example `{report['model']}` (model ID {report.get('model_id')}) built for the
{build_report['board']} and simulated cycle by cycle on Verilator: the generated Verilog
driven through its real AXI ports (64-bit pixel beats in, int32 result words out, counters
over AXI4-Lite), images back to back, every result compared with the golden model on the
build's own IR. {report['images']:,} held-out MNIST images{partial}:
**{report['mismatches']} mismatches** in logits, classes and per-layer event counters.

{table(rows)}

Tern's figures are simulated cycles, not a board measurement: latency is the cycles from the
first pixel beat accepted to the last result beat sent with an empty pipeline, throughput the
cycles between results with the input stream kept full, both at the 100 MHz fabric clock of
the PYNQ-Z2 build. {resources} The anchors are published figures:
{"; ".join(f"{a['name']}: {a['source']}" for a in ANCHORS)}.

- latency: {report['latency_cycles']:,} cycles ({report['latency_cycles'] / build_report['clock_mhz']:,.1f} µs)
- throughput: {report['cycles_per_image']:,.1f} cycles per image = {report['images_per_second_at_100mhz']:,.0f} images/s
  (the generator's plan estimated {fmt(est.get('cycles_per_image'), ',.1f')})
- synaptic operations: {report['sops_per_image']:,.0f} per image (golden model)

| layer | kind | lanes | SOPs/image | events/image | lane utilisation |
|---|---|---:|---:|---:|---:|
{layers}

Lane utilisation = useful synaptic operations ÷ lanes ÷ cycles per image (the encoding
layer's operations are its multiply-accumulates: non-zero pixels × fan-out).

Produced by (about {seconds / 60:.0f} minutes on a shared 2-core machine):

    {command}

Any build folder can be checked the same way: `python -m sim run BUILD_DIR --images N
[--backpressure] [--simulator icarus] [--debug]` (writes `sim_report.json`; on a mismatch
it names the first layer, step and neuron whose spike differs). CI runs 50 images of the
example with and without back-pressure and 20+ random networks (tests/test_sim_network*.py).
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--out", type=Path, default=None, help="build folder (default build/<model stem>)")
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--no-synth", dest="synth", action="store_false", help="skip synthesis (no resources)")
    p.add_argument("--reuse", action="store_true", help="reuse an existing build folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=250, help="images per simulator run (default 250)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-write", dest="write", action="store_false",
                   help="do not write benchmarks/mnist_sim.json and docs/measured.md")
    p.add_argument("--render", action="store_true",
                   help="only rewrite docs/measured.md from benchmarks/mnist_sim.json (e.g. after a stopped run)")
    args = p.parse_args(argv)
    if args.render:
        saved = json.loads(RESULTS.read_text())
        report = saved["sim"]
        build_report = dict(saved["build"], model=saved["sim"]["model"])
        MEASURED.write_text(markdown(saved["command"], report, build_report,
                                     [measured_row(report, build_report)] + ANCHORS, saved["total_seconds"]))
        return 0

    out = args.out or REPO / "build" / args.model.stem
    start = time.monotonic()
    build_seconds = build(args.model, out, args.synth, args.reuse)
    build_report = json.loads((out / "report.json").read_text())
    command = " ".join([".venv/bin/python benchmarks/mnist_sim.py", *(sys.argv[1:] if argv is None else argv)])
    chunks, ok = [], True
    # Chunks of images, each its own simulator run (one compile): the figures so far are
    # written after each, so a long run that is stopped still leaves what it measured.
    for first in range(0, args.images, args.chunk):
        count = min(args.chunk, args.images - first)
        result = simulate_build(out, count, start=first, seed=args.seed + first, progress=True, quiet=True,
                                report=out / f"sim_report_{first:04d}.json")
        ok = ok and result.ok
        chunks.append(result.report)
        report = merge(chunks)
        seconds = time.monotonic() - start
        rows = [measured_row(report, build_report)] + ANCHORS
        results = {"command": command, "build_seconds": round(build_seconds, 1), "total_seconds": round(seconds, 1),
                   "images_done": report["images"], "images_asked": args.images, "sim": report,
                   "chunks": chunks,
                   "build": {k: build_report.get(k) for k in ("board", "part", "clock_mhz", "resources", "fits",
                                                              "cycles_per_image", "latency_cycles", "model_id")},
                   "anchors": ANCHORS,
                   "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                         cwd=REPO).stdout.strip()}
        if args.write:
            RESULTS.write_text(json.dumps(results, indent=2) + "\n")
            MEASURED.write_text(markdown(command, report, build_report, rows, seconds))
        print(f"{report['images']}/{args.images} images: {report['mismatches']} mismatches, accuracy "
              f"{100 * report['accuracy']:.2f} %, {report['cycles_per_image']:,.1f} cycles/image", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table(rows))
        print(f"\n{report['mismatches']} mismatches on {report['images']} images; "
              f"latency {report['latency_cycles']:,} cycles, {report['cycles_per_image']:,.1f} cycles/image")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
