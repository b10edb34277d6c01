"""The MSAT paper's protocol on MNIST (docs/msat.md §5): accuracy per step of every conversion
variant, float and integer, and events per image, from one ReLU ANN.

    .venv/bin/python -m benchmarks.msat_protocol examples/mnist_relu_small.pt --images 2000 \
        --int-images 2000 --timesteps 128 --out benchmarks/msat_protocol.json

writes the JSON (every step's accuracy) and, beside it, the markdown table of docs/msat.md §5.

Float variants run snn's models (snn/msat.py); the integer variants run gen's golden model on
the compiled IR (the float64 reference equals it on every spike: tests/test_msat_golden.py).
Every curve comes from one run at the largest T: the accuracy at step t is the argmax of the readout
summed over steps 0..t, as the authors' evaluation does.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.atomic import write_atomically
from gen.ir import golden
from gen.frontend import compile_dict
from snn.checkpoint import checkpoint_dict, load_checkpoint
from snn.convert import convert, per_step_logits
from snn.data import load_mnist
from snn.evaluate import accuracy
from snn.model import build_model
from snn.msat import ConvertedNeuron

REPORT_STEPS = (1, 4, 8, 16, 32, 64, 128)
VARIANTS = {  # name: (method, msat fields)
    "if-subtract": ("if-subtract", None),
    "constant λ": ("msat", {"rule": "constant", "ladder_steps": 0}),
    "DTT only": ("msat", {"rule": "sigmoid", "use_det": False, "ladder_steps": 0}),
    "DET only": ("msat", {"rule": "sigmoid", "use_dtt": False, "ladder_steps": 0}),
    "DTT+DET (authors')": ("msat", {"rule": "sigmoid", "ladder_steps": 0}),
    "DTT+DET ladder M=4": ("msat", {"rule": "ladder", "ladder_steps": 4}),
    # Tern's: the membrane starts at half the first threshold (docs/msat.md §3b)
    "DTT+DET half start": ("msat", {"rule": "sigmoid", "ladder_steps": 0, "half_start": True}),
    "DTT+DET ladder M=4 half start": ("msat", {"rule": "ladder", "ladder_steps": 4, "half_start": True}),
}
INTEGER = ("if-subtract", "DTT+DET ladder M=4", "DTT+DET ladder M=4 half start")


def float_curve(model, images, labels):
    """(accuracy at every step, events per image over T) of a snn model."""
    counts = [0]

    def count(module, inputs, output):
        counts[0] += int(torch.count_nonzero(output))

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, ConvertedNeuron)]
    cumulative = per_step_logits(model, images)
    for h in hooks:
        h.remove()
    correct = (cumulative.argmax(-1).numpy() == labels[:, None]).mean(0)
    return correct.tolist(), counts[0] / len(labels)


def integer_curve(ckpt, images, labels):
    """(accuracy at every step, events per image) of the compiled IR, from the golden model."""
    net = compile_dict(ckpt, name="protocol").network
    g = golden.run(net, images, record=True)
    readout, T = net.readout, net.timesteps
    sources = {p.source: net.layer(p.source) for p in readout.projections}
    total = np.zeros((len(labels), net.num_classes), np.int64)
    correct = []
    for t in range(T):
        values = {name: golden.spike_values(layer, g.spikes[name][:, t],
                                            g.ladders[name][:, t] if name in g.ladders else None)
                  for name, layer in sources.items()}
        total += golden.layer_currents(readout, values)
        correct.append(float((np.argmax(total, 1) == labels).mean()))
    assert np.array_equal(total, g.logits)
    return correct, float(sum(v.sum() for v in g.events.values()) / len(labels))


def first_step_reaching(curve: list[float], target: float) -> str:
    """The first T (1-based) whose accumulated readout reaches `target`, or "> T"."""
    return next((str(t + 1) for t, a in enumerate(curve) if a >= target), f"> {len(curve)}")


def table(result: dict) -> str:
    """docs/msat.md §5's table: accuracy (%) at the reported steps, the first T that reaches the
    ANN on the same images, events per image at the largest T; float and integer rows."""
    T = result["timesteps"]
    steps = [t for t in REPORT_STEPS if t <= T]
    head = (["variant"] + [f"T={t}" for t in steps] + ["first T ≥ ANN", f"events/image (T={T})"])
    rows = []
    for name, entry in result["variants"].items():
        for kind, images, ann in (("float", result["images"], result["ann_accuracy"]),
                                  ("integer", result["int_images"], result.get("ann_int_accuracy"))):
            if kind not in entry:
                continue
            curve = entry[kind]
            label = f"{name} ({kind}" + (f", first {images})" if images != result["images"] else ")")
            rows.append([label] + [f"{100 * curve[t - 1]:.2f}" for t in steps]
                        + [first_step_reaching(curve, ann), f"{entry[f'{kind}_events']:,.0f}"])
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"



def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ann")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--int-images", type=int, default=200)
    parser.add_argument("--timesteps", type=int, default=64)
    parser.add_argument("--out", required=True)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ann, ckpt = load_checkpoint(args.ann)
    calib, _ = load_mnist(None, split="train", limit=512)
    x, y = load_mnist(None, split="heldout", limit=args.images)
    result = {"ann": args.ann, "images": len(y), "int_images": args.int_images, "timesteps": args.timesteps,
              "ann_accuracy": accuracy(ann, x, y), "variants": {}}
    result["ann_int_accuracy"] = accuracy(ann, x[:args.int_images], y[:args.int_images])
    for name in args.variants.split(","):
        method, fields = VARIANTS[name]
        start = time.process_time()
        arch, state, facts = convert(ckpt, method, args.timesteps, 0.9999, calib, fields)
        model = build_model(arch)
        model.load_state_dict(state)
        curve, events = float_curve(model, x, y)
        entry = {"float": curve, "float_events": events, "lambda": facts["lambda"]}
        if name in INTEGER:
            snn_ckpt = checkpoint_dict(model, {})
            entry["integer"], entry["integer_events"] = integer_curve(snn_ckpt, x[:args.int_images],
                                                                     y[:args.int_images])
        entry["cpu_seconds"] = time.process_time() - start
        result["variants"][name] = entry
        print(name, {t: round(curve[t - 1], 4) for t in REPORT_STEPS if t <= len(curve)},
              {t: round(entry["integer"][t - 1], 4) for t in REPORT_STEPS if "integer" in entry and t <= len(curve)},
              f"events {events:.0f}", f"{entry['cpu_seconds']:.0f} s", flush=True)
        write_atomically(Path(args.out), json.dumps(result, indent=1))
    markdown = table(result)
    write_atomically(Path(args.out).with_suffix(".md"), markdown)
    print(markdown)


if __name__ == "__main__":
    main()
