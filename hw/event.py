"""Stream layouts between layer engines: spike events and input pixels (docs/hardware.md)."""
from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, stream

PIXEL_LAYOUT = data.StructLayout({"value": unsigned(8), "last": 1})


def check_addr_width(addr_width) -> int:
    if not isinstance(addr_width, int) or isinstance(addr_width, bool) or addr_width < 1:
        raise ValueError(f"addr_width must be a positive integer, not {addr_width!r}")
    return addr_width


def ladder_bits(ladder_steps: int) -> int:
    """Bits of the ladder index m = 0 … M an msat event carries (docs/msat.md §3b); 0 for M = 0
    (a ternary or binary source: its events carry no index)."""
    if not isinstance(ladder_steps, int) or isinstance(ladder_steps, bool) or ladder_steps < 0:
        raise ValueError(f"ladder_steps must be a non-negative integer, not {ladder_steps!r}")
    return bits_for(ladder_steps + 1) if ladder_steps else 0


def event_layout(addr_width: int, m_width: int = 0) -> data.StructLayout:
    """One ternary spike (addr, neg) or, with eos = 1, the end of a timestep. An msat layer's
    event also carries its ladder index m (`m_width` bits) right above the address, so that it
    is bit for bit an event of `addr_width + m_width` address bits: queues, forks and the top
    carry it as such without knowing the neuron."""
    fields = {"addr": unsigned(check_addr_width(addr_width))}
    if m_width:
        fields["m"] = unsigned(check_addr_width(m_width))
    return data.StructLayout({**fields, "neg": 1, "eos": 1})


def event_signature(addr_width: int, m_width: int = 0) -> stream.Signature:
    return stream.Signature(event_layout(addr_width, m_width))


def connect_events(m, port, queue_in):
    """An input port into a queue of events of as many bits (an (address, m) event is one of
    address+m bits: the layouts differ, the bits are the same)."""
    m.d.comb += [queue_in.payload.eq(port.payload.as_value()), queue_in.valid.eq(port.valid),
                 port.ready.eq(queue_in.ready)]


def pixel_signature() -> stream.Signature:
    return stream.Signature(PIXEL_LAYOUT)


def bits_for(count: int) -> int:
    """Address width for `count` distinct values (at least 1 bit)."""
    return max(1, (max(1, count) - 1).bit_length())
