"""A simulated PYNQ board: the surface host.Accelerator uses, backed by the RTL of a build.

    with SimulatedBoard("build/mnist") as board:
        acc = host.Accelerator("build/mnist", overlay=board)
        acc.predict(images)

`SimulatedBoard` is overlay-like: `ip_dict`, the Tern IP as `tern_0` (MMIO `read`/`write`),
the AXI DMA as `axi_dma` (`sendchannel`/`recvchannel` with `transfer`/`wait`/`idle`, the
pynq API), and `allocate(shape, dtype)` for buffers. It starts `python -m sim.board_server`
as a subprocess, which runs the build's top under Verilator (sim/tb/board.py) and serves
requests on 127.0.0.1; the server stops when this client closes or goes away.
`stall_results()` holds m_axis tready low, as a stuck DMA would, to test timeouts;
`fail_dma(channel, bits)` puts a channel in an AXI DMA error state (halted, with DMASR
error bits), as a bad buffer address would on the board. What the driver does is recorded
where a test can check it: `cache_log` (every buffer flush and invalidate, with its size)
and `max_in_flight` (the most images sent whose result had not yet come back).
"""
from __future__ import annotations

import base64
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from formats.manifest import load_manifest
from sim.board_server import rtl_sources

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DMA_NAME, IP_NAME = "axi_dma", "tern_0"
RUN_CYCLES = 20_000          # simulated cycles per `idle` poll of a busy channel
DMA_TIMEOUT_S = 120.0        # what the driver should allow per image transfer here (simulation is slow)


class SimulatedBoardError(RuntimeError):
    """The simulation server failed to start or answered with an error."""


# The AXI DMA status register (DMASR) of each channel, as pynq's DMA reads it (PG021).
DMASR = {"send": 0x04, "recv": 0x34}
DMASR_HALTED, DMASR_IDLE = 1 << 0, 1 << 1
DMASR_SLAVE_ERROR, DMASR_DECODE_ERROR = 1 << 5, 1 << 6


class SimBuffer(np.ndarray):
    """A numpy array standing in for pynq's contiguous buffer (PynqBuffer): a view (a row)
    is a buffer too, and flush/invalidate record their size in the board's cache_log, as
    pynq's cache maintenance covers exactly the view's bytes."""

    physical_address = 0

    def __array_finalize__(self, obj):
        self.cache_log = getattr(obj, "cache_log", None)

    def flush(self):
        if self.cache_log is not None:
            self.cache_log.append(("flush", self.nbytes))

    def invalidate(self):
        if self.cache_log is not None:
            self.cache_log.append(("invalidate", self.nbytes))

    def freebuffer(self):
        pass


class SimIP:
    """MMIO of the Tern IP: 32-bit reads and writes at byte offsets."""

    def __init__(self, board: "SimulatedBoard"):
        self._board = board

    def read(self, offset: int = 0, length: int = 4) -> int:
        return int(self._board.request(op="read", addr=int(offset))["value"])

    def write(self, offset: int, value: int) -> None:
        self._board.request(op="write", addr=int(offset), value=int(value))


class SimChannel:
    """One direction of the AXI DMA in simple mode, with pynq's transfer/wait/idle."""

    def __init__(self, board: "SimulatedBoard", name: str):
        self._board, self.name = board, name
        self._target = None       # (flat uint8 view, start, nbytes) of an armed receive
        self._active = None       # the array of the last transfer (pynq invalidates it in wait)
        self._busy = False
        self._error = 0           # DMASR error bits; the channel is halted
        self._fail_next = 0       # error bits fail_dma arms: they strike the next busy poll

    @property
    def status(self) -> int:
        """The channel's DMASR as the real DMA would read it now (no simulation runs)."""
        if self._error:
            return self._error | DMASR_HALTED
        return 0 if self._busy else DMASR_IDLE

    @property
    def error(self) -> bool:
        return bool(self._error)

    def transfer(self, array, start: int = 0, nbytes: int = 0) -> None:
        if self._error:
            raise RuntimeError("DMA channel not started")        # what pynq says of a halted channel
        if self._busy and not self.idle:
            raise RuntimeError("DMA channel not idle")
        flat = np.asarray(array).reshape(-1).view(np.uint8)
        nbytes = nbytes or flat.nbytes - start
        if start < 0 or nbytes < 1 or start + nbytes > flat.nbytes:
            raise ValueError(f"transfer must lie within the buffer's {flat.nbytes} bytes, "
                             f"not start={start}, nbytes={nbytes}")
        if self.name == "send":
            if hasattr(array, "flush"):
                array.flush()                 # pynq flushes the whole array it is given
            data = flat[start:start + nbytes].tobytes()
            self._board.request(op="send", data=base64.b64encode(data).decode())
            self._board.images_sent += 1
            self._board.max_in_flight = max(self._board.max_in_flight,
                                            self._board.images_sent - self._board.results_received)
        else:
            self._target = (flat, start, nbytes)
            self._board.request(op="recv", nbytes=nbytes)
        self._active = array
        self._busy = True

    @property
    def idle(self) -> bool:
        if self._busy and self._fail_next:
            self._error, self._fail_next = self._fail_next, 0
        if self._error:
            return False                      # a halted channel never goes idle
        if not self._busy:
            return True
        reply = self._board.request(op="run", channel=self.name, cycles=RUN_CYCLES)
        if reply.get("data") is not None:
            data = np.frombuffer(base64.b64decode(reply["data"]), dtype=np.uint8)
            flat, start, _ = self._target
            flat[start:start + len(data)] = data
            self._target = None
        if reply.get("error"):
            raise SimulatedBoardError(f"DMA {self.name}: {reply['error']}")
        if reply["idle"]:
            self._busy = False
            if self.name == "recv":
                self._board.results_received += 1
        return not self._busy

    @property
    def running(self) -> bool:
        return not self._error

    def wait(self) -> None:
        """Like pynq: block until the transfer is done (no timeout), then invalidate the
        received array's cache lines."""
        while not self.idle:
            if self._error:
                raise RuntimeError(f"DMA {self.name}: error state, DMASR {self.status:#x}")
        if self.name == "recv" and self._active is not None and hasattr(self._active, "invalidate"):
            self._active.invalidate()
            self._active = None


class SimDma:
    def __init__(self, board: "SimulatedBoard"):
        self.sendchannel = SimChannel(board, "send")
        self.recvchannel = SimChannel(board, "recv")

    def read(self, offset: int = 0, length: int = 4) -> int:
        """The DMA's registers as pynq's DefaultIP.read gives them: only the two DMASR."""
        for name, address in DMASR.items():
            if offset == address:
                return (self.sendchannel if name == "send" else self.recvchannel).status
        return 0


class SimulatedBoard:
    """An overlay-like object for host.Accelerator; see the module docstring."""

    dma_timeout_s = DMA_TIMEOUT_S

    def __init__(self, build_dir, *, simulator: str = "verilator", start_timeout_s: float = 900,
                 idle_timeout_s: float = 600, seed: int | None = None):
        self.build_dir = Path(build_dir).resolve()
        load_manifest(self.build_dir)                 # NotATernBuild (a ValueError) for a bad build
        _, top = rtl_sources(self.build_dir)
        self.ip_dict = {DMA_NAME: {"type": "xilinx.com:ip:axi_dma:7.1", "phys_addr": 0x40400000},
                        IP_NAME: {"type": f"xilinx.com:module_ref:{top}:1.0", "phys_addr": 0x43C00000}}
        self.cache_log: list[tuple[str, int]] = []
        self.images_sent = self.results_received = self.max_in_flight = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="tern-board-")
        self._sock = self._stream = None
        self._proc = self._start(simulator, idle_timeout_s, seed)
        try:
            self._connect(start_timeout_s)
        except BaseException:
            self.close()
            raise
        self.axi_dma = SimDma(self)
        self.tern_0 = SimIP(self)

    # ------------------------------------------------------------------ server

    def _start(self, simulator, idle_timeout_s, seed):
        self._port_file = Path(self._tmp.name) / "port"
        self._log_path = Path(self._tmp.name) / "server.log"
        cmd = [sys.executable, "-m", "sim.board_server", str(self.build_dir), "--port-file",
               str(self._port_file), "--simulator", simulator, "--idle-timeout", str(idle_timeout_s)]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        log.info("starting the simulated board: %s", " ".join(cmd))
        self._log_file = open(self._log_path, "wb")
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)

    def server_log(self, tail: int = 3000) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def _connect(self, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while not self._port_file.exists():
            if self._proc.poll() is not None:
                raise SimulatedBoardError(f"the simulated board's server exited with code {self._proc.returncode} "
                                          f"before listening:\n{self.server_log()}")
            if time.monotonic() > deadline:
                raise SimulatedBoardError(f"the simulated board did not start within {timeout_s:g} s")
            time.sleep(0.2)
        port = int(self._port_file.read_text())
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self._stream = self._sock.makefile("rwb")
        log.info("connected to the simulated board on port %d", port)

    def request(self, **message) -> dict:
        if self._stream is None:
            raise SimulatedBoardError("the simulated board is closed")
        try:
            self._stream.write(json.dumps(message).encode() + b"\n")
            self._stream.flush()
            line = self._stream.readline()
        except OSError as exc:
            raise SimulatedBoardError(f"lost the simulated board ({exc}):\n{self.server_log()}") from None
        if not line:
            raise SimulatedBoardError(f"the simulated board's server went away:\n{self.server_log()}")
        reply = json.loads(line)
        if reply.get("error") and message.get("op") != "run":
            raise SimulatedBoardError(reply["error"])
        return reply

    # ------------------------------------------------------------------ pynq-like API

    def allocate(self, shape, dtype=np.uint8, **kwargs) -> SimBuffer:
        buf = np.zeros(shape, dtype=dtype).view(SimBuffer)
        buf.cache_log = self.cache_log
        return buf

    def fail_dma(self, channel: str = "recv", bits: int = DMASR_SLAVE_ERROR) -> None:
        """Make the next transfer of a DMA channel ("send" or "recv") fail as a bad buffer
        address would: once it is under way the channel halts with DMASR `bits`."""
        target = self.axi_dma.sendchannel if channel == "send" else self.axi_dma.recvchannel
        target._fail_next = bits

    def stall_results(self, stalled: bool = True) -> None:
        """Hold m_axis tready low (True), as a DMA that stopped receiving would, or release it."""
        self.request(op="stall", tready=not stalled)

    def close(self) -> None:
        connected = self._stream is not None
        if self._stream is not None:
            try:
                self._stream.write(b'{"op": "close"}\n')
                self._stream.flush()
                self._stream.readline()
            except OSError:
                pass
            self._stream.close()
            self._stream = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            if not connected:
                self._proc.terminate()      # still compiling or starting: nothing to finish
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
            self._log_file.close()
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
