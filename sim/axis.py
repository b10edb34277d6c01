"""AXI drivers for cocotb testbenches of a whole Tern top: AXI4-Stream source and sink,
AXI4-Lite master, and the byte packing of images and results (from manifest.json).

Why not cocotbext-axi: its channel coroutines wake on every clock edge for the whole run
(five for an AXI4-Lite master alone), which costs more than the design itself when
thousands of images stream through. These drivers wake on a clock edge only while a
handshake can happen and otherwise sleep on the edge of the one signal that can change
that (TREADY of a stalled input, TVALID of an idle output), so an image costs Python time
per beat, not per cycle.

Timing convention (the one cocotbext-axi uses, valid on Verilator and Icarus): just
after `RisingEdge(clk)` a read returns the value the DUT sampled at that edge, and a
write takes effect after it, i.e. is sampled at the next edge.

    source = AxisSource(dut, "s_axis", dut.aclk, rng=rng, gap=0.2)
    source.send(beats)                # one frame: list of ints, TLAST on the last
    sink = AxisSink(dut, "m_axis", dut.aclk, rng=rng, stall=0.2)
    frame = await sink.recv()         # Frame(beats, first_cycle, last_cycle)
    lite = AxiLiteMaster(dut, "s_axi", dut.aclk)
    value = await lite.read(offset); await lite.write(offset, value)

The board simulator (sim/board*.py) reuses these classes; they depend on cocotb only.
"""
from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import numpy as np

import cocotb
from cocotb.triggers import Event, RisingEdge
from cocotb.utils import get_sim_time

CLOCK_PERIOD_NS = 10          # 100 MHz, the PYNQ-Z2 fabric clock the reports quote


# --------------------------------------------------------------------------- packing


def pack_images(images: np.ndarray, input_packing: dict) -> np.ndarray:
    """uint8 images [N, C, H, W] -> uint64 beats [N, beats_per_image] (manifest "input").

    Pixel i of a beat sits in bits [8i+7:8i]; the last beat is zero-padded.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, not dtype {images.dtype}")
    n = images.shape[0]
    pixels = int(input_packing["pixels_per_image"])
    if int(np.prod(images.shape[1:])) != pixels:
        raise ValueError(f"images must have {pixels} pixels each, not shape {list(images.shape[1:])}")
    width = int(input_packing["bytes_per_image"])
    flat = np.zeros((n, width), np.uint8)
    flat[:, :pixels] = images.reshape(n, pixels)
    return flat.view("<u8").reshape(n, int(input_packing["beats_per_image"]))


def unpack_result(beats, output_packing: dict) -> tuple[np.ndarray, int]:
    """One result frame (list of 64-bit ints) -> (logits int64 [K], class)."""
    expected = int(output_packing["beats_per_image"])
    if len(beats) != expected:
        raise ValueError(f"a result frame must have {expected} beats, not {len(beats)}")
    words = np.array(beats, dtype=np.uint64).view("<i4")
    k = int(output_packing["num_classes"])
    return words[:k].astype(np.int64), int(words[k])


def now_cycles() -> int:
    """The current simulation time in clock cycles (rising edges at multiples of the period)."""
    return int(get_sim_time("ns")) // CLOCK_PERIOD_NS


# --------------------------------------------------------------------------- AXI4-Stream


def axis_signals(dut, prefix: str):
    """(tdata, tvalid, tlast, tready) of the DUT's AXI4-Stream port `prefix`."""
    return tuple(getattr(dut, f"{prefix}_{name}") for name in ("tdata", "tvalid", "tlast", "tready"))


def check_share(name: str, share: float) -> float:
    """A probability per cycle (of idle, of stall): at least 0, below 1 (1 would never move)."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"{name} must be in [0, 1), not {share!r}")
    return share


@dataclass
class Frame:
    beats: list[int]
    first_cycle: int           # cycle of the first beat's handshake
    last_cycle: int            # cycle of the last beat's (TLAST) handshake


class AxisSource:
    """Drives a DUT's AXI4-Stream slave `<prefix>_tdata/tvalid/tlast` (reads `_tready`).

    Frames queue up and go back to back. With gap > 0, before each beat TVALID stays low
    for a geometric number of cycles (probability `gap` per cycle): random input idle.
    `frames` records (first_cycle, last_cycle) per accepted frame.
    """

    def __init__(self, dut, prefix: str, clock, *, rng: random.Random | None = None, gap: float = 0.0):
        self.clock = clock
        self.tdata, self.tvalid, self.tlast, self.tready = axis_signals(dut, prefix)
        self.rng, self.gap = rng or random.Random(0), check_share("gap", gap)
        self.queue: deque[list[int]] = deque()
        self.frames: list[tuple[int, int]] = []
        self.beats = 0                 # beats accepted so far
        self._wake = Event()
        self._idle = Event()
        self._idle.set()
        self.tvalid.value = 0
        self.tlast.value = 0
        self._task = cocotb.start_soon(self._run())

    def send(self, beats) -> None:
        """Queue one frame (TLAST on its last beat)."""
        beats = [int(b) for b in beats]
        if not beats:
            raise ValueError("a frame must have at least one beat")
        self.queue.append(beats)
        self._idle.clear()
        self._wake.set()

    async def wait_idle(self) -> None:
        """Until every queued frame has been accepted."""
        await self._idle.wait()

    def _gap_cycles(self) -> int:
        n = 0
        while self.gap and self.rng.random() < self.gap:
            n += 1
        return n

    async def _run(self):
        while True:
            if not self.queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            beats = self.queue.popleft()
            first = None
            for i, beat in enumerate(beats):
                for _ in range(self._gap_cycles()):
                    await RisingEdge(self.clock)
                self.tdata.value = beat
                self.tlast.value = int(i == len(beats) - 1)
                self.tvalid.value = 1
                while True:
                    await RisingEdge(self.clock)
                    if self.tready.value:
                        break
                    # Stalled: sleep until TREADY rises, then its handshake is at the next edge.
                    await RisingEdge(self.tready)
                cycle = now_cycles()
                first = cycle if first is None else first
                self.beats += 1
                self.tvalid.value = 0
            self.tlast.value = 0
            self.frames.append((first, cycle))


class AxisSink:
    """Drives a DUT's AXI4-Stream master's `<prefix>_tready`, collects frames up to TLAST.

    With stall > 0, TREADY is low in a random share `stall` of the cycles (back-pressure).
    """

    def __init__(self, dut, prefix: str, clock, *, rng: random.Random | None = None, stall: float = 0.0):
        self.clock = clock
        self.tdata, self.tvalid, self.tlast, self.tready = axis_signals(dut, prefix)
        self.rng, self.stall = rng or random.Random(0), check_share("stall", stall)
        self.frames: deque[Frame] = deque()
        self.received = 0
        self.error: str | None = None     # set when the output carried X/Z bits
        self._arrived = Event()
        self.tready.value = 0 if stall else 1
        self._task = cocotb.start_soon(self._run())

    async def recv(self) -> Frame:
        """The next complete frame (waits for it)."""
        while not self.frames:
            if self.error:
                raise AssertionError(self.error)
            self._arrived.clear()
            await self._arrived.wait()
        return self.frames.popleft()

    async def _run(self):
        beats, first = [], None
        ready = 0 if self.stall else 1
        while True:
            await RisingEdge(self.clock)
            if ready and self.tvalid.value:
                cycle = now_cycles()
                data = self.tdata.value
                if not data.is_resolvable:
                    # Reported by recv() in the test's own context, where it fails the test.
                    self.error = f"{self.tdata._name} carries unknown (X/Z) bits at cycle {cycle}: {data}"
                    self._arrived.set()
                    return
                beats.append(int(data))
                first = cycle if first is None else first
                if self.tlast.value:
                    self.frames.append(Frame(beats, first, cycle))
                    self.received += 1
                    self._arrived.set()
                    beats, first = [], None
            if self.stall:
                ready = int(self.rng.random() >= self.stall)
                self.tready.value = ready
            if not self.tvalid.value:
                # Idle output: nothing can happen before TVALID rises (TREADY keeps its draw).
                await RisingEdge(self.tvalid)


# --------------------------------------------------------------------------- AXI4-Lite


class AxiLiteMaster:
    """Single-outstanding AXI4-Lite master on a DUT's `<prefix>_aw*/w*/b*/ar*/r*` ports."""

    def __init__(self, dut, prefix: str, clock):
        self.clock = clock
        self.p = {name: getattr(dut, f"{prefix}_{name}") for name in (
            "awaddr", "awprot", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready",
            "bresp", "bvalid", "bready", "araddr", "arprot", "arvalid", "arready",
            "rdata", "rresp", "rvalid", "rready")}
        for name in ("awvalid", "wvalid", "bready", "arvalid", "rready", "awprot", "arprot"):
            self.p[name].value = 0
        self._lock = cocotb.triggers.Lock()

    async def _until(self, name: str) -> None:
        while True:
            await RisingEdge(self.clock)
            if self.p[name].value:
                return

    async def _response(self, channel: str, what: str) -> None:
        """Accept one beat on the read data ("r") or write response ("b") channel; raises on
        an error response."""
        p = self.p
        p[f"{channel}ready"].value = 1
        await self._until(f"{channel}valid")
        p[f"{channel}ready"].value = 0
        resp = int(p[f"{channel}resp"].value)
        if resp:
            raise RuntimeError(f"AXI4-Lite {what} answered {resp:#b}")

    async def read(self, offset: int) -> int:
        """The 32-bit word at byte offset `offset`; raises on an error response."""
        async with self._lock:
            p = self.p
            p["araddr"].value = offset
            p["arvalid"].value = 1
            await self._until("arready")
            p["arvalid"].value = 0
            await self._response("r", f"read of {offset:#x}")
            return int(p["rdata"].value)

    async def write(self, offset: int, value: int, strobe: int = 0xF) -> None:
        async with self._lock:
            p = self.p
            p["awaddr"].value = offset
            p["wdata"].value = value & 0xFFFFFFFF
            p["wstrb"].value = strobe
            p["awvalid"].value = 1
            p["wvalid"].value = 1
            aw = w = False
            while not (aw and w):
                await RisingEdge(self.clock)
                aw = aw or bool(p["awready"].value)
                w = w or bool(p["wready"].value)
                if aw:
                    p["awvalid"].value = 0
                if w:
                    p["wvalid"].value = 0
            await self._response("b", f"write of {offset:#x}")


@dataclass
class Registers:
    """Named access to the register map that manifest.json carries (no offsets in code)."""
    master: AxiLiteMaster
    regmap: dict
    offsets: dict = field(init=False)

    def __post_init__(self):
        self.offsets = {r["name"]: r["offset"] for r in self.regmap["registers"]}

    def bit(self, register: str, field_name: str) -> int:
        reg = next(r for r in self.regmap["registers"] if r["name"] == register)
        return 1 << reg["fields"][field_name]

    async def read(self, name: str) -> int:
        return await self.master.read(self.offsets[name])

    async def write(self, name: str, value: int) -> None:
        await self.master.write(self.offsets[name], value)

    async def read_all(self) -> dict[str, int]:
        return {name: await self.read(name) for name in self.offsets}

    async def event_counts(self) -> dict[str, int]:
        """Layer name -> its spike-event counter."""
        return {c["layer"]: await self.read(c["register"]) for c in self.regmap["event_counters"]}
