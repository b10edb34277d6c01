"""A simulated PYNQ board: the surface host.Accelerator uses, backed by the RTL of a build.

    with SimulatedBoard("build/mnist") as board:
        acc = host.Accelerator("build/mnist", overlay=board)
        acc.predict(images)

`SimulatedBoard` is overlay-like: `ip_dict`, the Tern IP as `tern_0` (MMIO `read`/`write`),
the AXI DMA as `axi_dma` (`sendchannel`/`recvchannel` with `transfer`/`wait`/`idle`, the
pynq API), and `allocate(shape, dtype)` for buffers. It starts `python -m sim.board_server`
as a subprocess, which runs the build's top under Verilator (sim/tb/board.py) and serves
requests on 127.0.0.1; the server stops when this client closes or goes away.
`stall_results()` holds m_axis tready low, as a stuck DMA would, to test timeouts.
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

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DMA_NAME, IP_NAME = "axi_dma", "tern_0"
RUN_CYCLES = 20_000          # simulated cycles per `idle` poll of a busy channel
DMA_TIMEOUT_S = 120.0        # what the driver should allow per image transfer here (simulation is slow)


class SimulatedBoardError(RuntimeError):
    """The simulation server failed to start or answered with an error."""


class SimBuffer(np.ndarray):
    """A numpy array standing in for pynq's contiguous buffer (PynqBuffer)."""

    physical_address = 0

    def flush(self):
        pass

    def invalidate(self):
        pass

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
        self._busy = False

    def transfer(self, array, start: int = 0, nbytes: int = 0) -> None:
        if self._busy and not self.idle:
            raise RuntimeError("DMA channel not idle")
        flat = np.asarray(array).reshape(-1).view(np.uint8)
        nbytes = nbytes or flat.nbytes - start
        if start < 0 or nbytes < 1 or start + nbytes > flat.nbytes:
            raise ValueError(f"transfer must lie within the buffer's {flat.nbytes} bytes, "
                             f"not start={start}, nbytes={nbytes}")
        if self.name == "send":
            data = flat[start:start + nbytes].tobytes()
            self._board.request(op="send", data=base64.b64encode(data).decode())
        else:
            self._target = (flat, start, nbytes)
            self._board.request(op="recv", nbytes=nbytes)
        self._busy = True

    @property
    def idle(self) -> bool:
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
        return not self._busy

    @property
    def running(self) -> bool:
        return True

    def wait(self) -> None:
        """Like pynq: block until the transfer is done (no timeout)."""
        while not self.idle:
            pass


class SimDma:
    def __init__(self, board: "SimulatedBoard"):
        self.sendchannel = SimChannel(board, "send")
        self.recvchannel = SimChannel(board, "recv")


class SimulatedBoard:
    """An overlay-like object for host.Accelerator; see the module docstring."""

    dma_timeout_s = DMA_TIMEOUT_S

    def __init__(self, build_dir, *, simulator: str = "verilator", start_timeout_s: float = 900,
                 idle_timeout_s: float = 600, seed: int | None = None):
        self.build_dir = Path(build_dir)
        manifest_path = self.build_dir / "manifest.json"
        if not manifest_path.is_file():
            raise ValueError(f"build_dir must be a Tern build folder with manifest.json, not {str(build_dir)!r}")
        top = json.loads(manifest_path.read_text())["top"]["module"]
        self.ip_dict = {DMA_NAME: {"type": "xilinx.com:ip:axi_dma:7.1", "phys_addr": 0x40400000},
                        IP_NAME: {"type": f"xilinx.com:module_ref:{top}:1.0", "phys_addr": 0x43C00000}}
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
        cmd = [sys.executable, "-m", "sim.board_server", str(self.build_dir.resolve()), "--port-file",
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
        return np.zeros(shape, dtype=dtype).view(SimBuffer)

    def stall_results(self, stalled: bool = True) -> None:
        """Hold m_axis tready low (True), as a DMA that stopped receiving would, or release it."""
        self.request(op="stall", tready=not stalled)

    def close(self) -> None:
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
