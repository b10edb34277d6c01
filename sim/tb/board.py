"""The simulated board's server: a Tern top under simulation, driven over a local socket.

One cocotb test, `serve`, runs the build's top (`aclk`, `aresetn`, `s_axis`, `m_axis`,
`s_axi`) and answers requests from sim.board.SimulatedBoard, one JSON object per line on a
TCP socket bound to 127.0.0.1 on a free port (written to params["port_file"]):

    {"op": "read", "addr": A}                    -> {"value": V}        AXI4-Lite read
    {"op": "write", "addr": A, "value": V}       -> {}                  AXI4-Lite write
    {"op": "send", "data": base64}               -> {}                  one MM2S transfer (TLAST on its last beat)
    {"op": "recv", "nbytes": N}                  -> {}                  arm one S2MM transfer
    {"op": "run", "channel": "send"|"recv", "cycles": K}
                                                 -> {"idle": bool, "data": base64 | null, "cycle": C}
    {"op": "stall", "tready": bool}              -> {}                  hold m_axis tready low (a stalled DMA)
    {"op": "close"}                              -> {}                  end the test

Simulated time advances only inside requests (reads, writes, and `run`), so the results do
not depend on how fast the client polls. Like the AXI DMA, m_axis is accepted only while a
receive is armed. The test ends, and the simulator exits, when the client closes the
connection or says nothing for params["idle_timeout_s"] seconds; it fails if no client
connects within params["accept_timeout_s"].
"""
from __future__ import annotations

import base64
import json
import logging
import os
import socket
from pathlib import Path

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, First, RisingEdge, Timer

from sim.axis import CLOCK_PERIOD_NS, AxiLiteMaster, AxisSink, AxisSource, now_cycles
from sim.runner import tb_params

log = logging.getLogger("tern.board")
RESET_CYCLES = 8


def write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.tmp"
    Path(tmp).write_text(str(port))
    os.replace(tmp, path)   # atomic: the client never reads half a number


class DmaReceiver(AxisSink):
    """sim.axis.AxisSink gated like the AXI DMA's S2MM channel: TREADY is high only while a
    receive transfer is armed (and the board is not told to stall); TLAST ends the transfer."""

    def __init__(self, dut, prefix, clock):
        self.armed = False
        self.stalled = False
        self.done = Event()       # set when an armed transfer ends (TLAST)
        self._gate = Event()
        super().__init__(dut, prefix, clock)
        self.tready.value = 0

    @property
    def open(self) -> bool:
        return self.armed and not self.stalled

    def update(self) -> None:
        if self.open:
            self._gate.set()
        else:
            self.tready.value = 0

    async def _run(self):
        beats = []
        while True:
            if not self.open:
                self.tready.value = 0
                self._gate.clear()
                await self._gate.wait()
            self.tready.value = 1
            await RisingEdge(self.clock)
            if int(self.tready.value) and self.tvalid.value:
                beats.append(int(self.tdata.value))
                if self.tlast.value:
                    self.frames.append(beats)
                    self.received += 1
                    beats = []
                    self.armed = False      # the S2MM transfer ends at TLAST
                    self.tready.value = 0
                    self.done.set()
                    continue
            if self.open and not self.tvalid.value:
                await RisingEdge(self.tvalid)


class Board:
    """The top's AXI ports and the state of the two DMA channels."""

    def __init__(self, dut):
        self.dut = dut
        cocotb.start_soon(Clock(dut.aclk, CLOCK_PERIOD_NS, unit="ns").start())
        dut.aresetn.value = 0
        self.lite = AxiLiteMaster(dut, "s_axi", dut.aclk)
        self.source = AxisSource(dut, "s_axis", dut.aclk)
        self.sink = DmaReceiver(dut, "m_axis", dut.aclk)
        self.sent = 0             # frames handed to the source
        self.armed_bytes = 0

    async def reset(self):
        self.dut.aresetn.value = 0
        await ClockCycles(self.dut.aclk, RESET_CYCLES)
        self.dut.aresetn.value = 1
        await ClockCycles(self.dut.aclk, 2)

    def channel_idle(self, channel: str) -> bool:
        if channel == "send":
            return len(self.source.frames) == self.sent
        return not self.sink.armed

    async def run(self, channel: str, cycles: int) -> dict:
        """Simulate until `channel` is idle, the other channel's transfer ends, or `cycles`
        cycles have passed: a host polling both channels would see either change at once, so
        time never runs past an event the driver could have acted on."""
        if not self.channel_idle(channel):
            waiters = [self._finished(name) for name in ("send", "recv")
                       if name == channel or not self.channel_idle(name)]
            # A Timer, not ClockCycles: that one wakes Python on every edge, which costs more
            # than simulating the whole design.
            await First(*waiters, Timer(cycles * CLOCK_PERIOD_NS, unit="ns"))
            for waiter in waiters:
                if hasattr(waiter, "cancel") and not waiter.done():
                    waiter.cancel()
        reply = {"idle": self.channel_idle(channel), "data": None, "cycle": now_cycles()}
        if channel == "recv" and self.sink.frames:
            beats = self.sink.frames.popleft()
            data = np.array(beats, dtype="<u8").tobytes()
            if len(data) > self.armed_bytes:
                reply["error"] = (f"the IP sent {len(data)} bytes up to TLAST, more than the "
                                  f"{self.armed_bytes} bytes of the receive transfer")
                data = data[:self.armed_bytes]
            reply["data"] = base64.b64encode(data).decode()
        return reply

    def _finished(self, channel: str):
        """What fires when `channel`'s current transfer ends: a task (send) or a trigger (recv)."""
        if channel == "send":
            return cocotb.start_soon(self.source.wait_idle())
        self.sink.done.clear()
        return self.sink.done.wait()

    async def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "read":
            return {"value": await self.lite.read(int(request["addr"]))}
        if op == "write":
            await self.lite.write(int(request["addr"]), int(request["value"]) & 0xFFFFFFFF)
            return {}
        if op == "send":
            data = base64.b64decode(request["data"])
            if not data or len(data) % 8:
                return {"error": f"a send must be whole 64-bit beats, not {len(data)} bytes"}
            self.source.send(np.frombuffer(data, dtype="<u8").tolist())
            self.sent += 1
            return {}
        if op == "recv":
            self.armed_bytes = int(request["nbytes"])
            self.sink.armed = True
            self.sink.update()
            return {}
        if op == "run":
            return await self.run(request["channel"], int(request["cycles"]))
        if op == "stall":
            self.sink.stalled = not request["tready"]
            self.sink.update()
            return {}
        return {"error": f"op must be one of read, write, send, recv, run, stall, close, not {op!r}"}


@cocotb.test()
async def serve(dut):
    params = tb_params()
    board = Board(dut)
    await board.reset()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(float(params.get("accept_timeout_s", 60)))
    write_port_file(params["port_file"], server.getsockname()[1])
    try:
        conn, _ = server.accept()
    except socket.timeout:
        raise AssertionError("no client connected to the simulated board") from None
    finally:
        server.close()
    conn.settimeout(float(params.get("idle_timeout_s", 600)))
    stream = conn.makefile("rwb")
    log.info("client connected")
    try:
        while True:
            try:
                line = stream.readline()
            except socket.timeout:
                log.warning("no request for %s s: stopping", params.get("idle_timeout_s", 600))
                break
            if not line:
                break          # the client went away
            request = json.loads(line)
            if request.get("op") == "close":
                stream.write(b"{}\n")
                stream.flush()
                break
            reply = await board.handle(request)
            stream.write(json.dumps(reply).encode() + b"\n")
            stream.flush()
    finally:
        stream.close()
        conn.close()
    log.info("client gone after %d cycles", now_cycles())
