"""Where does the hardware first differ from the golden model? Spike by spike.

The testbench's probes (sim/tb/network.py: SpikeProbe) record every spike each layer sends
into the queue after it, as (step, neuron address, neg). `diagnose` rebuilds the spike map
of every layer and step from them (SPEC §5: address = flat [C,H,W] index, polarity −1 if
neg) and compares it with the golden model's `spikes`, layer by layer in pipeline order:
the first difference is where the fault is (a later layer only inherits it). An msat layer's
event carries its ladder index m right above the address (hw.event.event_layout): it is split
off and compared too, since the next layer adds W << (M − m) (docs/msat.md §3b).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hw.event import bits_for


@dataclass
class Difference:
    layer: str
    step: int
    neuron: int                      # flat index in the layer's [C,H,W] (or [F]) map
    coords: tuple[int, ...]          # the same index as (c, y, x) or (i,)
    hardware: int | str              # spike value, or what went wrong
    golden: int | str

    def __str__(self):
        at = ",".join(map(str, self.coords))
        return (f"layer {self.layer}, step {self.step}, neuron {self.neuron} ({at}): "
                f"hardware {self.hardware}, golden {self.golden}")


@dataclass
class Diagnosis:
    image: int                                          # held-out index within the run's source
    first: Difference | None                            # first differing spike, None if all equal
    layers: dict = field(default_factory=dict)          # layer -> {"events", "golden_events", "differing"}
    logits: tuple | None = None                         # (hardware, golden) when they differ
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        missing = [n for n in self.notes if n.startswith("no result")]
        if self.first is None and self.logits is None and missing:
            return f"image {self.image}: spikes match as far as they came, but {missing[0]}"
        if self.first is not None:
            return f"image {self.image}: first difference at {self.first}"
        if self.logits is not None:
            hw, gold = self.logits
            return (f"image {self.image}: every spike matches the golden model but the readout differs: "
                    f"logits {list(hw)}, golden {list(gold)}")
        extra = f" ({'; '.join(self.notes)})" if self.notes else ""
        return f"image {self.image}: spikes and logits match the golden model{extra}"

    def to_json(self) -> dict:
        return {"image": self.image, "summary": self.summary(),
                "first": None if self.first is None else {
                    "layer": self.first.layer, "step": self.first.step, "neuron": self.first.neuron,
                    "coords": list(self.first.coords), "hardware": self.first.hardware,
                    "golden": self.first.golden},
                "layers": self.layers, "notes": self.notes}


def spike_map(events: np.ndarray, steps: int, neurons: int, neuron_bits: int | None = None
              ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(step, addr, neg) rows -> spikes int8 [steps, neurons] and the ladder index of each
    spike int8 [steps, neurons]; problems (bad address, duplicates, extra steps) are returned
    as notes rather than hidden. `neuron_bits`: the address field holds the neuron in that many
    low bits and m above them (an msat layer's events); None: all of it is the neuron."""
    spikes = np.zeros((steps, neurons), np.int8)
    rungs = np.zeros((steps, neurons), np.int8)
    notes = []
    for step, word, neg in np.asarray(events, np.int64).reshape(-1, 3):
        addr, rung = (word, 0) if neuron_bits is None else (word & ((1 << neuron_bits) - 1), word >> neuron_bits)
        if step >= steps:
            notes.append(f"event after the last step (step {step}, neuron {addr})")
            continue
        if addr >= neurons:
            notes.append(f"step {step}: address {addr} outside the layer's {neurons} neurons")
            continue
        if spikes[step, addr]:
            notes.append(f"step {step}: neuron {addr} sent twice")
        spikes[step, addr] = -1 if neg else 1
        rungs[step, addr] = rung
    return spikes, rungs, notes


def spike_codes(spikes: np.ndarray, rungs: np.ndarray | None) -> np.ndarray:
    """One comparable value per (step, neuron): the spike, or for an msat layer the spike and
    its rung together (0: none; 1 + m: a spike at rung m)."""
    if rungs is None:
        return spikes.astype(np.int16)
    return np.where(spikes != 0, 1 + rungs.astype(np.int16), 0)


def describe(code: int, msat: bool) -> int | str:
    return (f"spike at rung {code - 1}" if code else "no spike") if msat else code


def first_difference(name: str, shape: tuple, hw: np.ndarray, gold: np.ndarray, msat: bool = False
                     ) -> Difference | None:
    """The first (step, neuron) where two [T, neurons] maps of spike_codes differ."""
    diff = np.argwhere(hw != gold)
    if diff.size == 0:
        return None
    step, neuron = (int(v) for v in diff[0])
    coords = tuple(int(c) for c in np.unravel_index(neuron, shape))
    return Difference(name, step, neuron, coords, describe(int(hw[step, neuron]), msat),
                      describe(int(gold[step, neuron]), msat))


def diagnose(build, golden, raw, image: int) -> Diagnosis:
    """Compare one image's probed events (`raw` from a run with probe=True) with `golden`
    (gen.ir.golden.run(..., record=True) on that image alone)."""
    net = build.net
    T = net.timesteps
    result = Diagnosis(image=image, first=None)
    for layer in net.layers[:-1]:
        if layer.name not in raw.probes:
            result.notes.append(f"layer {layer.name} could not be probed")
            continue
        neurons = int(np.prod(layer.shape))
        msat = layer.name in golden.ladders
        spikes, rungs, notes = spike_map(raw.probes[layer.name], T, neurons, bits_for(neurons) if msat else None)
        hw = spike_codes(spikes, rungs if msat else None)
        gold = spike_codes(golden.spikes[layer.name][0].reshape(T, neurons),
                           golden.ladders[layer.name][0].reshape(T, neurons) if msat else None)
        diff = first_difference(layer.name, tuple(layer.shape), hw, gold, msat)
        result.layers[layer.name] = {"events": int(np.count_nonzero(hw)), "golden_events": int(np.count_nonzero(gold)),
                                     "differing": int(np.count_nonzero(hw != gold))}
        result.notes += [f"layer {layer.name}: {n}" for n in notes[:5]]
        if diff is not None and result.first is None:
            result.first = diff
    if len(raw.classes):
        hw_logits, gold_logits = raw.logits[0], golden.logits[0]
        if not np.array_equal(hw_logits, gold_logits):
            result.logits = (tuple(int(v) for v in hw_logits), tuple(int(v) for v in gold_logits))
    else:
        result.notes.append(f"no result came back: {raw.error}")
    return result
