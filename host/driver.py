"""The Tern accelerator on a PYNQ board (or on the simulated board of sim/board.py).

    acc = Accelerator("tern_build")            # loads tern_<model>.bit with pynq.Overlay
    classes = acc.predict(images)              # uint8 [N, C, H, W] -> int64 [N]
    logits = acc.logits(images)                # int64 [N, K], the hardware's exact sums
    for first, logits, classes in acc.stream(images, batch_size=256): ...
    acc.last_run                               # images/s measured on the board, cycles
    acc.counters()                             # the IP's counters and error flags

Only numpy and, lazily, pynq are imported: the simulated board passes its own overlay and
buffer allocator, so this same code runs against the RTL simulation of a build.

Transfers are one image each, because the AXI DMA ends an MM2S transfer with TLAST and an
S2MM transfer at TLAST, and the IP frames images by TLAST (docs/build.md). The stream polls
both DMA channels and serves whichever is idle: the send channel runs ahead, one image
after another, as far as the IP accepts them (several images can be inside the layer
pipeline at once), while the receive channel is re-armed for the next result as soon as
one arrives. Batches alternate between two pairs of buffers, so the next batch is packed
while the DMA works on the current one. Each transfer names one row of a buffer (`buf[i]`),
so pynq flushes (before a send) and invalidates (after a receive) only that image's bytes.
A channel that halts or sets an error bit in its status register (DMASR) raises DmaError at
once, with the bits decoded, instead of waiting for the timeout.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from formats.manifest import BuildInfo, load_manifest
from formats.regmap import CONTROL_BITS, ERROR_BITS, MAGIC

from .errors import DmaError, DmaTimeout, ModelMismatch, NotATernBuild, TernError
from .packing import check_images, pack_images, unpack_results

log = logging.getLogger(__name__)

DEFAULT_BATCH = 256
DEFAULT_TIMEOUT_S = 5.0          # per image transfer on the board; a simulated board sets its own
TERN_IP_PREFIX = "tern"
DMA_TYPE = ":axi_dma:"
MODULE_REF_TYPE = ":module_ref:"
CONTROL_CLEAR_COUNTERS, CONTROL_CLEAR_ERRORS = CONTROL_BITS["CLEAR_COUNTERS"], CONTROL_BITS["CLEAR_ERRORS"]
# The AXI DMA's status registers (PG021): MM2S_DMASR and S2MM_DMASR, and their bits.
DMASR_OFFSET = {"send": 0x04, "receive": 0x34}
DMASR_HALTED, DMASR_IDLE = 1 << 0, 1 << 1
DMASR_ERRORS = ((4, "internal error"), (5, "slave error (the memory refused the access)"),
                (6, "decode error (no memory at the address)"))


@dataclass(frozen=True)
class RunStats:
    """One call's throughput: wall-clock on the host, and cycles counted by the IP itself."""
    images: int
    seconds: float                      # wall clock around the DMA loop
    images_per_second: float
    busy_cycles: int                    # BUSY_CYCLES difference: cycles an image was inside
    cycles_per_image: float
    hw_images_per_second: float | None  # images / (busy_cycles / clock), None without a clock

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, not {value!r}")
    return int(value)


def _positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, not {value!r}")
    return float(value)


def buffer_slot(image: int, size: int) -> tuple[int, int]:
    """(buffer pair, row) of image `image` when batches of `size` alternate between two pairs."""
    batch, row = divmod(image, size)
    return batch % 2, row


def dma_error(status: int | None) -> str | None:
    """What is wrong with a busy DMA channel whose DMASR reads `status`, or None if nothing."""
    if status is None:
        return None
    problems = [name for bit, name in DMASR_ERRORS if status >> bit & 1]
    if status & DMASR_HALTED:
        problems.insert(0, "channel halted")
    return ", ".join(problems) or None


def find_ips(overlay) -> tuple[str, list[str]]:
    """(DMA name, candidate Tern IP names) from an overlay's ip_dict."""
    ip_dict = getattr(overlay, "ip_dict", None)
    if not isinstance(ip_dict, dict):
        raise NotATernBuild(f"overlay must be a pynq.Overlay (or alike) with an ip_dict, "
                            f"not {type(overlay).__name__}")
    dmas = sorted(name for name, ip in ip_dict.items() if DMA_TYPE in str(ip.get("type", "")))
    if len(dmas) != 1:
        raise NotATernBuild(f"the overlay must have exactly one AXI DMA, not {len(dmas)} "
                            f"(its IPs: {', '.join(sorted(ip_dict)) or 'none'}): not a Tern build")
    candidates = sorted(name for name, ip in ip_dict.items()
                        if name.lower().startswith(TERN_IP_PREFIX) or MODULE_REF_TYPE in str(ip.get("type", "")))
    if not candidates:
        raise NotATernBuild(f"the overlay has no Tern IP (its IPs: {', '.join(sorted(ip_dict))}): "
                            f"not a Tern build")
    return dmas[0], candidates


@dataclass
class _Flow:
    """Where a stream stands: transfers issued and finished on each channel."""
    n: int
    deadline: float                  # time.monotonic() by which something must progress
    sent: int = 0                    # send transfers issued
    sends_done: int = 0              # ... and finished
    armed: int = 0                   # receive transfers issued
    received: int = 0                # results in
    send_busy: bool = False
    recv_busy: bool = False


class Accelerator:
    """A loaded Tern build: `predict`, `logits`, `stream`, `counters`, `last_run`.

    build_dir: the build (or deployment) folder with manifest.json and the bitstream.
    overlay: None loads `<build_dir>/<bitstream>` with pynq.Overlay; or an overlay-like object
    (ip_dict, IP attributes with read/write, a DMA with sendchannel/recvchannel), e.g.
    sim.board.SimulatedBoard, which also provides `allocate`.
    """

    def __init__(self, build_dir, overlay=None, *, batch_size: int = DEFAULT_BATCH, timeout: float | None = None):
        self.info: BuildInfo = load_manifest(build_dir)
        self.batch_size = _positive_int("batch_size", batch_size)
        if timeout is not None:
            _positive_float("timeout", timeout)
        if overlay is None:
            overlay = self._load_overlay()
        self.overlay = overlay
        default_timeout = getattr(overlay, "dma_timeout_s", DEFAULT_TIMEOUT_S)
        self.timeout = _positive_float("timeout", default_timeout if timeout is None else timeout)
        self._allocate = getattr(overlay, "allocate", None) or _pynq_allocate
        dma_name, candidates = find_ips(overlay)
        self.dma = getattr(overlay, dma_name)
        self.ip = self._find_tern_ip(candidates)
        self._check_identity()
        self._buffers = [self._new_buffers(self.batch_size) for _ in range(2)]
        self.last_run: RunStats | None = None
        self.write("CONTROL", 1 << CONTROL_CLEAR_ERRORS)

    # ------------------------------------------------------------------ setup

    def _load_overlay(self):
        path = self.info.bitstream_path
        if path is None or not path.is_file():
            raise NotATernBuild(f"bitstream must be a file in the build folder, not {str(path)!r}: run Vivado "
                                f"(build_bitstream.tcl) first, or pass overlay=")
        try:
            import pynq  # on the board only
        except ImportError:
            raise TernError("pynq is not installed: the driver loads a bitstream only on a PYNQ board; elsewhere "
                            "pass overlay= (e.g. sim.board.SimulatedBoard) or run python -m sim infer") from None
        log.info("loading %s", path)
        return pynq.Overlay(str(path))

    def _find_tern_ip(self, candidates):
        found = {}
        for name in candidates:
            ip = getattr(self.overlay, name)
            found[name] = ip.read(self.info.offset("MAGIC"))
            if found[name] == MAGIC:
                return ip
        readings = ", ".join(f"{name} reads {value:#010x}" for name, value in found.items())
        raise NotATernBuild(f"no IP of the overlay answers with the Tern MAGIC {MAGIC:#010x} ({readings}): "
                            f"not a Tern build")

    def _check_identity(self):
        info = self.info
        version = self.read("REGMAP_VERSION")
        if version != info.regmap_version:
            raise NotATernBuild(f"the IP's register map version is {version}, the manifest's "
                                f"{info.regmap_version}: rebuild, or use the driver of this build")
        model_id = self.read("MODEL_ID")
        if model_id != info.model_id:
            raise ModelMismatch(f"the loaded hardware has model ID {model_id:#010x}, but "
                                f"{info.build_dir / 'manifest.json'} is model {info.model_name!r} with ID "
                                f"{info.model_id:#010x}: load the bitstream of this build folder")
        expected = {"TIMESTEPS": info.timesteps, "NUM_CLASSES": info.num_classes,
                    "PIXELS_PER_IMAGE": info.pixels_per_image}
        for name, value in expected.items():
            if name in info.registers and self.read(name) != value:
                raise ModelMismatch(f"the IP's {name} is {self.read(name)}, the manifest says {value}")

    def _new_buffers(self, rows: int):
        inp = self._allocate(shape=(rows, self.info.input_bytes), dtype=np.uint8)
        out = self._allocate(shape=(rows, self.info.output_bytes), dtype=np.uint8)
        return inp, out

    # ------------------------------------------------------------------ registers

    def read(self, name: str) -> int:
        return int(self.ip.read(self.info.offset(name)))

    def write(self, name: str, value: int) -> None:
        self.ip.write(self.info.offset(name), int(value))

    def busy_cycles(self) -> int:
        """The 64-bit BUSY_CYCLES counter, read HI, LO, HI until HI is stable."""
        while True:
            hi = self.read("BUSY_CYCLES_HI")
            lo = self.read("BUSY_CYCLES_LO")
            if self.read("BUSY_CYCLES_HI") == hi:
                return hi << 32 | lo

    def counters(self) -> dict:
        """Images in and out, busy cycles, error flags and spike events per layer."""
        errors = self.read("ERRORS")
        return {
            "images_in": self.read("IMAGES_IN"),
            "images_out": self.read("IMAGES_OUT"),
            "busy_cycles": self.busy_cycles(),
            "errors": [name for name, bit in ERROR_BITS.items() if errors >> bit & 1],
            "events": {layer: self.read(reg) for layer, reg in self.info.event_counters},
        }

    def clear_counters(self) -> None:
        self.write("CONTROL", 1 << CONTROL_CLEAR_COUNTERS)

    # ------------------------------------------------------------------ inference

    def predict(self, images) -> np.ndarray:
        """int64 [N] classes of uint8 images [N, C, H, W] (or one [C, H, W] image)."""
        return self._run(images)[1]

    def logits(self, images) -> np.ndarray:
        """int64 [N, K]: the logits exactly as the hardware summed them."""
        return self._run(images)[0]

    def _run(self, images):
        images = check_images(self.info, images)
        logits = np.empty((len(images), self.info.num_classes), dtype=np.int64)
        classes = np.empty(len(images), dtype=np.int64)
        for first, batch_logits, batch_classes in self.stream(images):
            logits[first:first + len(batch_logits)] = batch_logits
            classes[first:first + len(batch_classes)] = batch_classes
        return logits, classes

    def stream(self, images, batch_size: int | None = None):
        """Yield (index of the batch's first image, logits [n, K], classes [n]) batch by batch.

        Any number of images; the last batch may be partial. Sets `last_run` when done.
        """
        if not self._buffers:
            raise TernError("the accelerator is closed: make a new Accelerator")
        images = check_images(self.info, images)
        size = self.batch_size if batch_size is None else _positive_int("batch_size", batch_size)
        if size > len(self._buffers[0][0]):
            self._buffers = [self._new_buffers(size) for _ in range(2)]
        n = len(images)
        if n == 0:
            self.last_run = None
            return
        batches = -(-n // size)
        cycles_before, out_before = self.busy_cycles(), self.read("IMAGES_OUT")
        began = time.perf_counter()
        flow = _Flow(n=n, deadline=time.monotonic() + self.timeout)
        packed = 0
        try:
            while flow.received < n:
                progressed = False
                # A batch goes into the pair whose previous batch has been sent entirely.
                if packed < batches and flow.sends_done >= (packed - 1) * size:
                    first = packed * size
                    pack_images(self.info, images[first:first + size], self._buffers[packed % 2][0])
                    packed += 1
                    progressed = True
                if flow.send_busy and self._idle("send", flow.sent - 1):
                    flow.send_busy = False
                    flow.sends_done = flow.sent
                    progressed = True
                if not flow.send_busy and flow.sent < n and flow.sent // size < packed:
                    pair, row = buffer_slot(flow.sent, size)
                    self.dma.sendchannel.transfer(self._buffers[pair][0][row])
                    flow.send_busy = True
                    flow.sent += 1
                    progressed = True
                if flow.recv_busy and self._idle("receive", flow.received):
                    flow.recv_busy = False
                    flow.received += 1
                    progressed = True
                    if flow.received % size == 0 or flow.received == n:
                        first = (flow.received - 1) // size * size
                        out = self._buffers[(first // size) % 2][1]
                        yield (first, *unpack_results(self.info, np.asarray(out[:flow.received - first])))
                if not flow.recv_busy and flow.armed < n:
                    pair, row = buffer_slot(flow.armed, size)
                    self.dma.recvchannel.transfer(self._buffers[pair][1][row])
                    flow.recv_busy = True
                    flow.armed += 1
                self._check_progress(flow, progressed)
        except GeneratorExit:
            # The caller stopped early: collect the results of images already sent, so that
            # they do not come back as the next call's first results.
            self._drain(flow)
            raise
        if flow.send_busy:
            self._wait_idle("send", flow.sent - 1)
        seconds = time.perf_counter() - began
        self._check_errors()
        self.last_run = self._stats(n, seconds, self.busy_cycles() - cycles_before,
                                    (self.read("IMAGES_OUT") - out_before) % (1 << 32))

    def _channel(self, what: str):
        return self.dma.sendchannel if what == "send" else self.dma.recvchannel

    def _idle(self, what: str, index: int) -> bool:
        """Whether the channel finished its transfer (of image `index`); DmaError if it failed."""
        channel = self._channel(what)
        if channel.idle:
            channel.wait()    # returns at once now; pynq invalidates the received row here
            return True
        problem = dma_error(self._dma_status(what))
        if problem:
            raise DmaError(f"the DMA {what} of image {index} failed: {problem} (DMASR "
                           f"{self._dma_status(what):#010x}); reload the overlay")
        return False

    def _dma_status(self, what: str) -> int | None:
        """The channel's DMASR, through the DMA's register interface when it has one, else
        from pynq's channel properties (`error`, `running`)."""
        read = getattr(self.dma, "read", None)
        if callable(read):
            return int(read(DMASR_OFFSET[what]))
        channel = self._channel(what)
        status = 0
        if getattr(channel, "error", False):
            status |= 1 << 5
        if getattr(channel, "running", True) is False:
            status |= DMASR_HALTED
        return status

    def _check_progress(self, flow: "_Flow", progressed: bool) -> None:
        """Restart the clock on progress; past it, DmaTimeout naming the oldest transfer."""
        now = time.monotonic()
        if progressed:
            flow.deadline = now + self.timeout
            return
        if now <= flow.deadline:
            return
        what, index = ("receive", flow.received) if flow.recv_busy else ("send", flow.sent - 1)
        c = self.counters()
        raise DmaTimeout(f"the DMA {what} of image {index} did not finish within {self.timeout:g} s "
                         f"(IP counters: {c['images_in']} images in, {c['images_out']} out, "
                         f"errors {c['errors'] or 'none'}): the accelerator or the DMA stalled; "
                         f"reload the overlay")

    def _wait_idle(self, what: str, index: int) -> None:
        deadline = time.monotonic() + self.timeout
        while not self._idle(what, index):
            if time.monotonic() > deadline:
                raise DmaTimeout(f"the DMA {what} of image {index} did not finish within {self.timeout:g} s: "
                                 f"the accelerator or the DMA stalled; reload the overlay")

    def _drain(self, flow: "_Flow") -> None:
        """Receive (into a scratch row) every result of an image already sent."""
        scratch = self._buffers[0][1][0]
        if flow.send_busy:
            self._wait_idle("send", flow.sent - 1)
        while flow.received < flow.sent:
            if not flow.recv_busy:
                self.dma.recvchannel.transfer(scratch)
                flow.recv_busy = True
            self._wait_idle("receive", flow.received)
            flow.recv_busy = False
            flow.received += 1

    def _check_errors(self) -> None:
        flags = self.counters()["errors"]
        if flags:
            self.write("CONTROL", 1 << CONTROL_CLEAR_ERRORS)
            raise TernError(f"the IP flagged framing errors {flags}: the image bytes did not match "
                            f"input.bytes_per_image = {self.info.input_bytes} of the manifest")

    def _stats(self, n: int, seconds: float, cycles: int, images_out: int) -> RunStats:
        if images_out != n:
            log.warning("IMAGES_OUT grew by %d for %d images", images_out, n)
        clock = self.info.clock_mhz
        per_image = cycles / n
        return RunStats(images=n, seconds=seconds, images_per_second=n / seconds if seconds > 0 else float("inf"),
                        busy_cycles=cycles, cycles_per_image=per_image,
                        hw_images_per_second=(clock * 1e6 / per_image) if clock and per_image else None)

    # ------------------------------------------------------------------ cleanup

    def close(self) -> None:
        for pair in self._buffers:
            for buf in pair:
                free = getattr(buf, "freebuffer", None)
                if free is not None:
                    free()
        self._buffers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _pynq_allocate(shape, dtype):
    import pynq  # on the board only
    return pynq.allocate(shape=shape, dtype=dtype)
