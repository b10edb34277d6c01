"""The AXI4-Lite register map of a Tern accelerator: the one source of every offset.

`register_map(layer_names)` builds the map; the top (`hw.top`) is elaborated from it and
`manifest.json` carries it to the host driver and the testbenches, so no offset is
written down anywhere else. The bit positions of CONTROL, STATUS and ERRORS and the MAGIC
value are defined here too, and `hw.top` and `host.driver` import them (this package is
pure Python, so the board, which has numpy and pynq only, reads the same definitions).
All registers are 32 bits wide and word aligned.

Access kinds:
  ro   read-only, the value comes from the design
  rw   read/write storage (SCRATCH: lets a driver check that the bus works)
  w1p  write-1-pulse: writing a 1 to a bit raises that bit's one-cycle pulse; reads 0
  w1c  read a sticky flag word; writing a 1 to a bit clears that flag
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

REGMAP_VERSION = 1
MAGIC = 0x5445524E  # "TERN" in ASCII, so a driver can tell it found our IP
ADDR_WIDTH = 12     # 4 KiB window: what Vivado's address editor assigns at the least
ACCESS_KINDS = ("ro", "rw", "w1p", "w1c")
FIRST_EVENT_COUNTER = 0x40
_LAYER_NAME = re.compile(r"^[A-Za-z0-9_]+$")
# Bit name -> bit index of the registers with fields: the hardware drives these bits and the
# driver decodes them, both from these dicts.
CONTROL_BITS = {"CLEAR_COUNTERS": 0, "CLEAR_ERRORS": 1}
STATUS_BITS = {"BUSY": 0, "IN_IMAGE": 1}
ERROR_BITS = {"SHORT_IMAGE": 0, "LONG_IMAGE": 1}


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str
    description: str
    fields: dict[str, int] = field(default_factory=dict)  # bit name -> bit index

    def __post_init__(self):
        if self.access not in ACCESS_KINDS:
            raise ValueError(f"access must be one of {', '.join(ACCESS_KINDS)}, not {self.access!r}")
        if self.offset % 4 or not 0 <= self.offset < (1 << ADDR_WIDTH):
            raise ValueError(f"offset must be a word-aligned address below {1 << ADDR_WIDTH:#x}, "
                             f"not {self.offset!r}")


@dataclass(frozen=True)
class RegisterMap:
    registers: tuple[Register, ...]
    event_counters: tuple[tuple[str, str], ...]  # (layer name, register name), in layer order
    version: int = REGMAP_VERSION
    addr_width: int = ADDR_WIDTH

    def __getitem__(self, name: str) -> Register:
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(f"no register named {name!r}")

    def offset(self, name: str) -> int:
        return self[name].offset

    def to_json(self) -> dict:
        """What manifest.json carries: offsets, access kinds and bit fields by name."""
        return {
            "version": self.version,
            "addr_width": self.addr_width,
            "data_width": 32,
            "registers": [{"name": r.name, "offset": r.offset, "access": r.access,
                           "description": r.description, "fields": dict(r.fields)}
                          for r in self.registers],
            "event_counters": [{"layer": layer, "register": reg} for layer, reg in self.event_counters],
        }


def _fixed_registers() -> list[Register]:
    return [
        Register("MAGIC", 0x00, "ro", f"constant {MAGIC:#010x} ('TERN')"),
        Register("REGMAP_VERSION", 0x04, "ro", "version of this register map"),
        Register("MODEL_ID", 0x08, "ro", "32-bit model ID (gen.ir.irfile.model_id): the driver "
                 "checks it against manifest.json"),
        Register("CONTROL", 0x10, "w1p", "write 1 to a bit to act",
                 dict(CONTROL_BITS)),
        Register("STATUS", 0x14, "ro", "BUSY: an image is inside; IN_IMAGE: part of an image "
                 "has arrived on s_axis", dict(STATUS_BITS)),
        Register("ERRORS", 0x18, "w1c", "sticky flags, write 1 to clear. SHORT_IMAGE: TLAST came "
                 "early (the image was padded with zeros); LONG_IMAGE: TLAST missing on the "
                 "image's last beat (extra beats were dropped up to TLAST)",
                 dict(ERROR_BITS)),
        Register("SCRATCH", 0x1C, "rw", "free read/write word for bus checks"),
        Register("TIMESTEPS", 0x20, "ro", "T, fixed in hardware"),
        Register("NUM_CLASSES", 0x24, "ro", "K, logits per result"),
        Register("PIXELS_PER_IMAGE", 0x28, "ro", "C*H*W uint8 pixels per image"),
        Register("NUM_LAYERS", 0x2C, "ro", "layer engines in the pipeline"),
        Register("IMAGES_IN", 0x30, "ro", "images accepted on s_axis (wraps at 2^32)"),
        Register("IMAGES_OUT", 0x34, "ro", "results sent on m_axis (wraps at 2^32)"),
        Register("BUSY_CYCLES_LO", 0x38, "ro", "cycles with STATUS.BUSY or IN_IMAGE set, bits 31..0"),
        Register("BUSY_CYCLES_HI", 0x3C, "ro", "bits 63..32 (read HI, LO, HI until HI is stable)"),
    ]


def register_map(layer_names) -> RegisterMap:
    """The register map of a network whose layer engines are `layer_names`, in order."""
    names = list(layer_names)
    for name in names:
        if not isinstance(name, str) or not _LAYER_NAME.match(name):
            raise ValueError(f"layer name must match [A-Za-z0-9_]+, not {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"layer names must be unique, not {names!r}")
    limit = ((1 << ADDR_WIDTH) - FIRST_EVENT_COUNTER) // 4
    if not 1 <= len(names) <= limit:
        raise ValueError(f"number of layers must be in 1..{limit}, not {len(names)!r}")
    regs = _fixed_registers()
    counters = []
    for index, name in enumerate(names):
        reg_name = f"EVENTS_{index}"
        regs.append(Register(reg_name, FIRST_EVENT_COUNTER + 4 * index, "ro",
                             f"spike events sent by layer {index} ({name}), wraps at 2^32"))
        counters.append((name, reg_name))
    return RegisterMap(tuple(regs), tuple(counters))


def registers_for_hw(regmap: RegisterMap) -> tuple[tuple[str, int, str], ...]:
    """The plain (name, offset, access) triples that hw.axi.AxiLiteRegisters takes."""
    return tuple((r.name, r.offset, r.access) for r in regmap.registers)
