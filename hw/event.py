"""Stream layouts between layer engines: spike events and input pixels (docs/hardware.md)."""
from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, stream

PIXEL_LAYOUT = data.StructLayout({"value": unsigned(8), "last": 1})


def check_addr_width(addr_width) -> int:
    if not isinstance(addr_width, int) or isinstance(addr_width, bool) or addr_width < 1:
        raise ValueError(f"addr_width must be a positive integer, not {addr_width!r}")
    return addr_width


def event_layout(addr_width: int) -> data.StructLayout:
    """One ternary spike (addr, neg) or, with eos = 1, the end of a timestep."""
    return data.StructLayout({"addr": unsigned(check_addr_width(addr_width)), "neg": 1, "eos": 1})


def event_signature(addr_width: int) -> stream.Signature:
    return stream.Signature(event_layout(addr_width))


def pixel_signature() -> stream.Signature:
    return stream.Signature(PIXEL_LAYOUT)


def bits_for(count: int) -> int:
    """Address width for `count` distinct values (at least 1 bit)."""
    return max(1, (max(1, count) - 1).bit_length())
