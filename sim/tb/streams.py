"""Shared testbench parts: clock/reset, stream sources with random idle cycles and stream
sinks with random back-pressure, all advanced together once per clock cycle.

Inputs are driven on the falling edge; handshakes are read in the ReadOnly phase of the
same half cycle, i.e. exactly what the DUT samples on the next rising edge.
"""
from __future__ import annotations

import logging
import random
from collections import deque

import cocotb
from amaranth.hdl import Const
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from sim.runner import tb_params

log = logging.getLogger("tern.tb")


def pack(layout, values) -> int:
    """Payload (nested dicts/lists of ints, as amaranth's Layout.const takes) -> one integer."""
    return Const.cast(layout.const(values)).value & ((1 << layout.size) - 1)


def unpack(layout, word: int) -> dict:
    """One integer -> nested dicts/lists of ints (signed fields sign-extended)."""
    return to_python(layout, layout.from_bits(int(word)))


def to_python(layout, value):
    if isinstance(layout, data.StructLayout):
        return {name: to_python(field.shape, getattr(value, name)) for name, field in layout}
    if isinstance(layout, data.ArrayLayout):
        return [to_python(layout.elem_shape, value[i]) for i in range(layout.length)]
    return int(value)


def to_signed(raw: int, width: int) -> int:
    return raw - (1 << width) if raw >> (width - 1) & 1 else raw


def payload_layout(component, port: str):
    """The payload layout of an Amaranth component's stream `port` (the DUT's signals of
    that stream are named after it: `<port>__valid`, ...)."""
    return getattr(component, port).payload.shape()


def stream_signals(dut, prefix: str):
    """(valid, payload, ready) of the DUT's stream `prefix`, as Amaranth names them."""
    return (getattr(dut, f"{prefix}__valid"), getattr(dut, f"{prefix}__payload"),
            getattr(dut, f"{prefix}__ready"))


def random_pause(rng: random.Random, probability: float):
    """A cocotbext-axi pause generator: pauses a channel in a random share of the cycles."""
    while True:
        yield rng.random() < probability


class Source:
    """Drives `<prefix>__valid/__payload`, holding each beat until `__ready`."""

    def __init__(self, dut, prefix: str, rng: random.Random, idle: float = 0.0):
        self.valid, self.payload, self.ready = stream_signals(dut, prefix)
        self.rng, self.idle = rng, idle
        self.queue: deque[int] = deque()
        self.current = None
        self.sent = 0
        self.valid.value = 0

    def send(self, word: int):
        self.queue.append(word)

    @property
    def busy(self) -> bool:
        return self.current is not None or bool(self.queue)

    def drive(self):
        if self.current is None and self.queue and (self.idle == 0 or self.rng.random() >= self.idle):
            self.current = self.queue.popleft()
            self.payload.value = self.current
        self.valid.value = 1 if self.current is not None else 0

    def sample(self):
        if self.current is not None and int(self.ready.value):
            self.current = None
            self.sent += 1


class Sink:
    """Drives `<prefix>__ready` (high with probability 1 - backpressure), collects beats."""

    def __init__(self, dut, prefix: str, rng: random.Random, backpressure: float = 0.0):
        self.valid, self.payload, self.ready = stream_signals(dut, prefix)
        self.rng, self.backpressure = rng, backpressure
        self.received: list[int] = []
        self._ready = 0
        self.ready.value = 0

    def drive(self):
        self._ready = 1 if self.backpressure == 0 or self.rng.random() >= self.backpressure else 0
        self.ready.value = self._ready

    def sample(self):
        if self._ready and int(self.valid.value):
            self.received.append(int(self.payload.value))


class Bench:
    """Clock, reset and the per-cycle loop that advances every source and sink."""

    def __init__(self, dut, period_ns: int = 10):
        self.dut = dut
        self.params = tb_params()
        self.seed = cocotb.RANDOM_SEED
        self.rng = random.Random(self.seed)
        log.info("seed %d, params %s", self.seed, self.params)
        self.sources: list[Source] = []
        self.sinks: list[Sink] = []
        self.cycle = 0
        self.hooks = []   # called after each sample with the bench (e.g. cycle monitors)
        cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())

    def source(self, prefix, idle=0.0) -> Source:
        self.sources.append(Source(self.dut, prefix, self.rng, idle))
        return self.sources[-1]

    def sink(self, prefix, backpressure=0.0) -> Sink:
        self.sinks.append(Sink(self.dut, prefix, self.rng, backpressure))
        return self.sinks[-1]

    def random_streams(self, in_prefix: str, out_prefix: str, default: float = 0.3) -> tuple[Source, Sink]:
        """A source on `in_prefix` with random idle cycles and a sink on `out_prefix` with random
        back-pressure, in the shares the params `idle` and `backpressure` give (else `default`)."""
        return (self.source(in_prefix, idle=self.params.get("idle", default)),
                self.sink(out_prefix, backpressure=self.params.get("backpressure", default)))

    async def reset(self, cycles: int = 2):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def step(self):
        await FallingEdge(self.dut.clk)
        for s in self.sources:
            s.drive()
        for s in self.sinks:
            s.drive()
        await ReadOnly()
        for s in self.sources:
            s.sample()
        for s in self.sinks:
            s.sample()
        for hook in self.hooks:
            hook(self)
        self.cycle += 1

    async def run_until(self, done, max_cycles: int, what: str = "the DUT"):
        start = self.cycle
        while not done():
            if self.cycle - start > max_cycles:
                raise AssertionError(f"timeout after {max_cycles} cycles waiting for {what} "
                                     f"(seed {self.seed})")
            await self.step()
        return self.cycle - start

    async def run_for(self, cycles: int):
        """`cycles` more cycles (e.g. to let anything unexpected still come out)."""
        for _ in range(cycles):
            await self.step()


async def latency(bench: Bench, source: Source, word: int, arrived, limit: int = 10_000) -> int:
    """Cycles from the edge that accepts `word` on an idle DUT to the first ReadOnly phase
    where `arrived()` holds (1 = visible right after the accepting edge)."""
    source.send(word)
    await bench.run_until(lambda: source.sent > 0, limit, "the input to be accepted")
    accepted = bench.cycle          # the accepting edge comes right after this step
    await bench.step()
    await bench.run_until(arrived, limit, "the output")
    return bench.cycle - accepted


def write_report(path: str, report: dict) -> None:
    import json
    with open(path, "w") as f:
        json.dump(report, f)
