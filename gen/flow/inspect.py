"""`python -m gen inspect model.pt`: what the compiler makes of a model, layer by layer.

Compiles the checkpoint (folds, quantisation), derives bounds and register widths, runs the
golden model on N held-out MNIST images (images 8000+ of the t10k file) and prints per
layer: type, shape, fan-in/out, weight range, θ, widths, events and SOPs per image, and the
totals against the FLOPs of the equivalent ANN. `--json` prints the same as JSON;
`--plots DIR` writes membrane-potential histograms and firing rates as PNGs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from formats.mnist import load_mnist

from gen.frontend.floatnet import run_float
from gen.frontend import compile_checkpoint
from gen.ir.golden import run as run_golden
from gen.ir.irfile import load, model_id
from gen.backend.plots import write_plots
from gen.frontend.quantise import DEFAULT_WBITS
from gen.ir.stats import network_stats

PLOT_IMAGES = 100  # membrane recording keeps int64 [N, T, neurons] per layer: cap N for plots


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("inspect", help="per-layer table of a compiled model",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("model", help="checkpoint (.pt) or IR file pair (.json or .npz)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--images", type=int, default=200, metavar="N",
                   help="held-out MNIST images to measure activity on (default 200; 0 = none)")
    p.add_argument("--wbits", type=int, default=None,
                   help="weight bits to quantise a checkpoint with (default 8; refused for an IR file, "
                        "which is already quantised)")
    p.add_argument("--plots", metavar="DIR", help="write PNG plots into DIR")
    p.set_defaults(func=run)
    return p


def _load(path: str, wbits: int | None):
    if Path(path).suffix in (".json", ".npz"):     # either half of an IR pair names the pair
        net = load(path)
        if wbits is not None:
            # Silently ignoring it would print a table the user did not ask for.
            raise ValueError(f"--wbits applies to a checkpoint (.pt); {path} is an IR file, already quantised "
                             f"with wbits={net.wbits}: drop --wbits or inspect the checkpoint")
        return net, None
    compiled = compile_checkpoint(path, wbits=DEFAULT_WBITS if wbits is None else wbits)
    return compiled.network, compiled


def check_plots_dir(plots: str | None) -> None:
    """Refuse --plots onto an existing file before the (long) golden run, not after it."""
    if plots is None:
        return
    path = Path(plots)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--plots must be a folder (new or existing), not the file {plots!r}")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ValueError(f"--plots {plots!r} is inside {str(parent)!r}, which is a file, not a folder")


def _images(net, n: int):
    if net.input_shape != (1, 28, 28):
        raise ValueError(f"--images must be 0 for a model whose input is {list(net.input_shape)}: "
                         f"the held-out images are MNIST [1, 28, 28]")
    return load_mnist(split="heldout", limit=n)


def measure(net, compiled, n_images: int, plots: str | None, progress: bool = True) -> tuple[dict, object]:
    if n_images < 0:
        raise ValueError(f"--images must be >= 0, not {n_images!r}")
    if n_images == 0:
        return network_stats(net), None
    images, labels = _images(net, n_images)
    # The bar only on a terminal: piped or logged stderr keeps just the one-line errors.
    with tqdm(total=len(images), desc="golden model", unit="img", disable=not progress or not sys.stderr.isatty(),
              leave=False) as bar:
        result = run_golden(net, images, record=True, progress=bar.update)
    stats = network_stats(net, result, labels)
    if compiled is not None:
        float_classes = run_float(compiled.float_net, images).logits.argmax(1)
        stats["totals"]["float_accuracy"] = float((float_classes == labels).mean())
        stats["totals"]["float_integer_agreement"] = float((float_classes == result.classes).mean())
    if plots:
        subset = images[:PLOT_IMAGES]
        recorded = run_golden(net, subset, record=True, record_membranes=True)
        stats["plots"] = [str(p) for p in write_plots(net, recorded, plots)]
    return stats, result


def _fmt_range(lo, hi) -> str:
    return f"{lo}..{hi}" if lo != hi else f"{lo}"


def format_table(stats: dict) -> str:
    header = ["layer", "kind", "neuron", "shape", "fan-in", "fan-out", "W", "θ⁺", "θ⁻", "k", "e",
              "bits I/acc/U/logit", "events/img", "rate", "SOPs/img", "ANN FLOPs"]
    rows = []
    for l in stats["layers"]:
        w = l["widths"]
        bits = "/".join(str(w[k]) if w[k] is not None else "-" for k in ("current", "accumulator", "membrane", "logit"))
        rows.append([
            l["name"], l["kind"], l["neuron"] or "-", "×".join(map(str, l["shape"])), f"{l['fan_in']:g}",
            f"{l['fan_out']:g}", _fmt_range(l["weight_min"], l["weight_max"]),
            _fmt_range(*l["theta_pos"]) if l.get("theta_pos") else "-",
            _fmt_range(*l["theta_neg"]) if l.get("theta_neg") else "-",
            "-" if l["leak_shift"] is None else str(l["leak_shift"]),
            _fmt_range(l["scale_exp_min"], l["scale_exp_max"]), bits,
            f"{l['events_per_image']:.0f}" if "events_per_image" in l else "-",
            f"{l['firing_rate']:.3f}" if "firing_rate" in l else "-",
            f"{l['sops_per_image']:.0f}" if "sops_per_image" in l else "-",
            f"{l['ann_flops']}",
        ])
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    t = stats["totals"]
    lines.append("")
    lines.append(f"model {stats['name']}: input {stats['input_shape']}, T={stats['timesteps']}, "
                 f"wbits={stats['wbits']}, {stats['classes']} classes, model_id 0x{stats['model_id']:08x}")
    lines.append(f"equivalent ANN: {t['ann_flops']:,} FLOPs/image ≈ {t['ann_energy_uj']:.3f} µJ at "
                 f"{stats['energy_model']['pj_per_flop']} pJ/FLOP")
    if "snn_sops_per_image" in t:
        lines.append(f"SNN on {t['images']} held-out images: {t['snn_flops_per_image']:,} FLOPs (encoding layer) + "
                     f"{t['snn_sops_per_image']:,.0f} SOPs per image, {t['events_per_image']:,.0f} events ≈ "
                     f"{t['snn_energy_uj']:.3f} µJ ({100 * t['energy_ratio_snn_to_ann']:.1f} % of the ANN; "
                     f"{stats['energy_model']['pj_per_sop'] * 1000:g} fJ/SOP)")
        acc = f"integer accuracy {100 * t['integer_accuracy']:.2f} %"
        if "float_accuracy" in t:
            acc += (f", float accuracy {100 * t['float_accuracy']:.2f} %, float/integer agreement "
                    f"{100 * t['float_integer_agreement']:.2f} %")
        lines.append(acc)
    for p in stats.get("plots", []):
        lines.append(f"wrote {p}")
    return "\n".join(lines)


def run(args) -> int:
    if args.images < 0:
        raise ValueError(f"--images must be >= 0, not {args.images!r}")
    check_plots_dir(args.plots)
    net, compiled = _load(args.model, args.wbits)
    stats, _ = measure(net, compiled, args.images, args.plots, progress=not args.json)
    stats["model_id"] = model_id(net)
    if compiled is not None:
        stats["meta"] = compiled.meta
    if args.json:
        print(json.dumps(stats, indent=1, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
    else:
        print(format_table(stats))
    return 0
