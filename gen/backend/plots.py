"""PNG figures of a recorded golden run (matplotlib, Agg backend).

membrane_histograms  per spiking layer, the distribution of U^t / (θ⁺ << k·t): the membrane
                     potential in units of the layer's threshold, so layers with different
                     scales compare (as in Fig. 2 of the Ternary Spike paper). Dashed lines
                     mark the thresholds (±1 for plain neurons).
firing_rates         per layer and step, the share of neurons firing +1 and −1.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from gen.ir.golden import GoldenResult
from gen.ir import Network


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def normalised_membranes(net: Network, result: GoldenResult, layer) -> np.ndarray:
    """U^t / (θ⁺_c << k·t) for every recorded neuron and step, flattened (float, for plotting only)."""
    U = result.membranes[layer.name].astype(np.float64)  # [N, T, C, ...]
    theta = layer.theta_pos.astype(np.float64).reshape((1, 1, -1) + (1,) * (U.ndim - 3))
    steps = (2.0 ** (layer.leak_shift * np.arange(net.timesteps))).reshape((1, -1) + (1,) * (U.ndim - 2))
    return (U / (np.abs(theta) * steps)).reshape(-1)


def membrane_histograms(net: Network, result: GoldenResult, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    layers = [l for l in net.layers if l.name in result.membranes]
    cols = min(3, len(layers))
    rows = -(-len(layers) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, layer in zip(axes.flat, layers):
        values = normalised_membranes(net, result, layer)
        lo, hi = np.percentile(values, [0.5, 99.5])
        span = max(abs(lo), abs(hi), 1.5)
        ax.hist(np.clip(values, -span, span), bins=120, range=(-span, span), color="tab:blue")
        ax.axvline(1.0, color="tab:red", ls="--", lw=1)
        if layer.neuron == "ternary":
            theta_neg = float(np.median(layer.theta_neg / np.abs(layer.theta_pos)))
            ax.axvline(theta_neg, color="tab:red", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_title(f"{layer.name} ({layer.neuron}, k={layer.leak_shift})", fontsize=10)
        ax.set_xlabel("membrane U / θ⁺")
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    fig.suptitle(f"{net.name}: membrane potential before firing, {result.logits.shape[0]} images, all steps "
                 f"(tails beyond the 0.5–99.5 % percentiles piled at the edges)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def firing_rates(net: Network, result: GoldenResult, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    layers = [l for l in net.layers if l.name in result.spikes]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(layers) * net.timesteps / 2, 3.6))
    width = 0.8 / net.timesteps
    x = np.arange(len(layers))
    for t in range(net.timesteps):
        pos = [float((result.spikes[l.name][:, t] > 0).mean()) for l in layers]
        neg = [float((result.spikes[l.name][:, t] < 0).mean()) for l in layers]
        offset = (t - (net.timesteps - 1) / 2) * width
        ax.bar(x + offset, pos, width * 0.95, color=plt.cm.Blues(0.45 + 0.5 * t / max(1, net.timesteps - 1)),
               label=f"t={t} +1")
        ax.bar(x + offset, neg, width * 0.95, bottom=pos, color=plt.cm.Oranges(0.45 + 0.5 * t / max(1, net.timesteps - 1)),
               label=f"t={t} −1")
    ax.set_xticks(x, [l.name for l in layers])
    ax.set_ylabel("share of neurons firing")
    ax.set_title(f"{net.name}: firing rate per layer and step ({result.logits.shape[0]} images)")
    ax.legend(fontsize=8, ncols=2)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _save_atomically(figure_writer, net: Network, result: GoldenResult, path: Path) -> Path:
    """Draw into a temporary file beside `path` and rename it into place, so a full disk or
    Ctrl-C never leaves a truncated PNG under the final name."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        figure_writer(net, result, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if exc.filename is None:          # savefig's write errors carry no file name: name it
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_plots(net: Network, result: GoldenResult, directory: str | os.PathLike) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return [_save_atomically(membrane_histograms, net, result, directory / "membrane_histograms.png"),
            _save_atomically(firing_rates, net, result, directory / "firing_rates.png")]
