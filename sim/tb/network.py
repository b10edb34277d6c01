"""Whole-network testbench: images in on s_axis, results out on m_axis, counters on s_axi.

Run by sim/network.py through sim.runner (never directly). Params (tb_params):
  beats     .npy of uint64 [N, beats per image]: the images, packed as manifest "input"
  expected  .npy of int64 [N] golden classes, or null (only for the live mismatch count)
  out       .npz to write: logits, classes, cycles, registers, probes (always written,
            also when the run fails, so the caller can report what came back)
  manifest  the build's manifest.json (packing, register map, layers)
  gap/stall probabilities of input idle / output back-pressure per cycle
  probe     record the spikes between layers, event or map streams (for sim/diagnose.py)
  timeout_cycles  cycles to wait for one result before calling the design hung
  progress  show a tqdm bar on stderr

All images are queued at once, so the input stream stays full (back to back) unless
`gap` asks for idle cycles; the cycles of every first/last beat are recorded.
"""
from __future__ import annotations

import json
import logging
import random

import numpy as np

import cocotb
from amaranth.hdl import Shape
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout

from hw.event import event_layout
from hw.ternary_stream import word_beat
from sim.axis import CLOCK_PERIOD_NS, AxiLiteMaster, AxisSink, AxisSource, Registers, unpack_result
from sim.runner import tb_params

log = logging.getLogger("tern.tb.network")

IDENTITY = ("MAGIC", "REGMAP_VERSION", "MODEL_ID", "TIMESTEPS", "NUM_CLASSES", "PIXELS_PER_IMAGE", "NUM_LAYERS")


def sends_events(entry: dict) -> bool:
    """Whether a manifest layer sends spike events (every layer but the readout); manifests
    from before the graph fields say so by their event address width."""
    return bool(entry.get("sends_events", entry.get("event_addr_bits")))


class EventTap:
    """An event stream's beats as spikes: (addr, neg) per event, a marker at each step's end."""

    def __init__(self, entry: dict):
        layout = event_layout(int(entry["event_addr_bits"]))
        self.fields = {f: (layout[f].offset, Shape.cast(layout[f].shape).width) for f in ("addr", "neg", "eos")}

    def spikes(self, word: int) -> tuple[list[tuple[int, int]], bool]:
        """(the beat's spikes as (flat address, neg), whether it ends a step)."""
        get = {f: (word >> off) & ((1 << w) - 1) for f, (off, w) in self.fields.items()}
        return ([] if get["eos"] else [(get["addr"], get["neg"])]), bool(get["eos"])


class MapTap:
    """A dense map stream's beats as spikes (hw/ternary_stream.py): one beat is one position
    (y, x) with every channel's 2-bit code, positions in (y, x) order within a step; each
    non-zero channel c is a spike at the flat [C,H,W] address c·H·W + position."""

    def __init__(self, entry: dict):
        channels, height, width = (list(entry["shape"]) + [1, 1])[:3]
        self.channels, self.plane = int(channels), int(height) * int(width)
        self.position = 0

    def spikes(self, word: int) -> tuple[list[tuple[int, int]], bool]:
        values, eos, _ = word_beat(word, self.channels)
        found = [(c * self.plane + self.position, int(v < 0)) for c, v in enumerate(values) if v]
        self.position = 0 if eos else self.position + 1
        return found, bool(eos)


def spike_tap(entry: dict):
    """How to read a layer's outgoing stream as spikes, or None for one that sends none (the readout)."""
    if sends_events(entry):
        return EventTap(entry)
    if entry.get("output_format") == "map":
        return MapTap(entry)
    return None


class SpikeProbe:
    """Watches every layer's outgoing spike stream inside the top (`<layer>_<output stream>__*`,
    the stream named in the manifest: events, or a dense engine's maps) and records (step,
    addr, neg) per spike; the step counts that layer's end-of-step markers. A layer read by
    several layers is watched once, before the fork, so each spike is recorded once."""

    def __init__(self, dut, clock, layers):
        self.clock = clock
        self.taps = []
        self.missing = []
        for entry in layers:
            tap = spike_tap(entry)
            if tap is None:
                continue
            name, stream = entry["name"], entry.get("output_stream", "events")
            try:
                handles = [getattr(dut, f"{name}_{stream}__{part}") for part in ("valid", "ready", "payload")]
            except AttributeError:
                self.missing.append(name)
                continue
            self.taps.append((name, handles, tap))
        self.events = {name: [] for name, _, _ in self.taps}
        self.steps = {name: 0 for name, _, _ in self.taps}
        cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self.clock)
            for name, (valid, ready, payload), tap in self.taps:
                if valid.value and ready.value:
                    spikes, end_of_step = tap.spikes(int(payload.value))
                    self.events[name] += [(self.steps[name], addr, neg) for addr, neg in spikes]
                    if end_of_step:
                        self.steps[name] += 1


def _progress(total: int, enabled: bool, label: str):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="img", desc=label or "simulating", dynamic_ncols=True, leave=False)


@cocotb.test()
async def images_stream_through_the_network(dut):
    params = tb_params()
    with open(params["manifest"]) as f:
        manifest = json.load(f)
    beats = np.load(params["beats"])
    expected = np.load(params["expected"]) if params.get("expected") else None
    n = beats.shape[0]
    rng = random.Random(cocotb.RANDOM_SEED)
    log.info("seed %d: %d images, gap %.2f, stall %.2f", cocotb.RANDOM_SEED, n, params["gap"], params["stall"])

    cocotb.start_soon(Clock(dut.aclk, CLOCK_PERIOD_NS, unit="ns").start())
    dut.aresetn.value = 0
    source = AxisSource(dut, "s_axis", dut.aclk, rng=rng, gap=params["gap"])
    sink = AxisSink(dut, "m_axis", dut.aclk, rng=rng, stall=params["stall"])
    registers = Registers(AxiLiteMaster(dut, "s_axi", dut.aclk), manifest["registers"])
    probe = SpikeProbe(dut, dut.aclk, manifest["layers"]) if params.get("probe") else None
    await ClockCycles(dut.aclk, 4)
    dut.aresetn.value = 1
    await ClockCycles(dut.aclk, 2)

    out = {"logits": [], "classes": [], "out_cycles": []}
    meta = {"registers": {}, "identity": {}, "event_counts": {}, "error": None, "probed": []}
    bar = _progress(n, params.get("progress"), params.get("label", ""))
    wrong = 0
    try:
        meta["identity"] = {name: await registers.read(name) for name in IDENTITY if name in registers.offsets}
        await registers.write("CONTROL", registers.bit("CONTROL", "CLEAR_COUNTERS")
                              | registers.bit("CONTROL", "CLEAR_ERRORS"))
        for image in beats:
            source.send(image.tolist())
        for i in range(n):
            try:
                frame = await with_timeout(sink.recv(), params["timeout_cycles"] * CLOCK_PERIOD_NS, "ns")
            except cocotb.triggers.SimTimeoutError:
                raise AssertionError(f"no result for image {i} within {params['timeout_cycles']:,} cycles "
                                     f"({i} of {n} came back, {len(source.frames)} images and {source.beats} beats "
                                     f"accepted; IMAGES_IN {await registers.read('IMAGES_IN')}, "
                                     f"STATUS {await registers.read('STATUS'):#x}): the design hangs") from None
            logits, cls = unpack_result(frame.beats, manifest["output"])
            out["logits"].append(logits)
            out["classes"].append(cls)
            out["out_cycles"].append((frame.first_cycle, frame.last_cycle))
            if expected is not None and cls != int(expected[i]):
                wrong += 1
            if bar is not None:
                bar.update(1)
                if wrong:
                    bar.set_postfix(mismatches=wrong, refresh=False)
        await ClockCycles(dut.aclk, 4)      # let the counters settle past the last beat
        meta["registers"] = await registers.read_all()
        meta["event_counts"] = await registers.event_counts()
    except Exception as exc:
        meta["error"] = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if bar is not None:
            bar.close()
        _write(params["out"], out, source, meta, probe, manifest)


def _write(path, out, source, meta, probe, manifest):
    k = int(manifest["output"]["num_classes"])
    arrays = {
        "logits": np.array(out["logits"], np.int64).reshape(-1, k),
        "classes": np.array(out["classes"], np.int64),
        "out_cycles": np.array(out["out_cycles"], np.int64).reshape(-1, 2),
        "in_cycles": np.array(source.frames, np.int64).reshape(-1, 2),
    }
    if probe is not None:
        meta["probed"] = [name for name, _, _ in probe.taps]
        meta["probe_missing"] = probe.missing
        for name, events in probe.events.items():
            arrays[f"probe_{name}"] = np.array(events, np.int64).reshape(-1, 3)
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
