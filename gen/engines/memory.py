"""The memory model of the engines' cost: a memory as hw/ builds it, and how yosys maps it.

    Memory(name, depth, width, per_lane, rom, transparent)   memory_mapping(mem, device) -> MemoryMapping

The engines (gen/engines/) list their memories as `Memory` objects; the plan prices each
with `memory_mapping` (BRAM, LUT RAM or soft logic, as synth would choose) from the primitives
of the board's device description (gen.boards.device; Xilinx 7-series: gen/boards/xc7.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from gen.boards.device import Device


def addr_width(count: int) -> int:
    return max(1, (max(1, count) - 1).bit_length())


@dataclass(frozen=True)
class Memory:
    """One memory of a layer engine as hw/ builds it: `depth` words of `width` bits.

    The P lanes share each memory, a word holding one field per lane (`per_lane`; the
    ArrayLayouts in hw/accumulator.py and hw/sweep.py), so synthesis tiles the whole
    P-field word across block RAMs rather than P narrow memories.
    """
    name: str
    depth: int
    width: int                  # bits per word, all lanes together
    per_lane: bool              # one field of width / lanes bits per lane
    rom: bool = False           # fixed contents (weights): no write port
    transparent: bool = False   # its read port sees the same cycle's write (forwarding)
    # Bits per write enable (0: one enable for the whole word). A narrower group (the
    # converter's map memory writes one channel's 2 bits: hw/dense_convert.py) takes a
    # primitive's write-enable byte of its own (a LUT RAM's whole width), and each group of
    # each address range gets its own write enable.
    write_group: int = 0

    @property
    def bits(self) -> int:
        return self.depth * self.width


# ----------------------------------------------------------------- how yosys maps a memory
#
# BRAM binds first on the PYNQ-Z2, so the estimate follows yosys's own choice for every
# memory rather than a bits-per-BRAM rule: `memory_libmap` (passes/memory/memory_libmap.cc)
# prices each way to build a memory and takes the cheapest, and synth_xilinx -family xc7
# offers it soft logic, LUT RAM (techlibs/xilinx/lutrams_xc5v.txt) and block RAM
# (brams_xc4v.txt with HAS_SIZE_36, HAS_CASCADE, HAS_MIXWIDTH_SDP). For one aspect ratio
# (a data width `unit` and the words one primitive holds at it) the memory is cut into
# `chunks` address ranges whose bits are packed side by side into `replicas` primitives;
# the price is the primitives' cost plus half a unit per bit of the read mux and write
# demux over the chunks, plus 2 per emulated port feature. The numbers below are the
# libraries' costs, held by the device (gen/boards/xc7.py); tests/test_build_plan.py checks the
# result against synthesis.




@dataclass(frozen=True)
class MemoryMapping:
    """How yosys builds one memory, and what that takes."""
    primitive: str           # a RamPrimitive name, or "logic"
    unit: int                # data width per primitive
    chunks: int              # address ranges (read-muxed)
    replicas: int            # primitives
    cost: float
    bram36: float
    luts: int
    ffs: int


def _tilings(mem: Memory, device: Device):
    """Every (primitive, width) way to build `mem` as memory_libmap prices it."""
    emulation = 1 + (3 if mem.transparent else 0)    # an unshared read port; forwarding logic
    for prim in device.ram_primitives:
        if mem.rom and not prim.rom:
            continue
        for i, unit in enumerate(prim.widths):
            byte = 1 if mem.rom else (prim.byte if 0 < prim.byte <= unit else unit)
            padded = -(-mem.width // byte) * byte             # write-enable groups are not split
            if mem.write_group and not mem.rom:
                padded = _groups(mem) * -(-mem.write_group // byte) * byte
            chunks = -(-mem.depth // (1 << (prim.abits - i)))
            replicas = -(-chunks * padded // unit)
            cost = (prim.cost - prim.widthscale) * replicas + (prim.widthscale * chunks * mem.width) // unit
            cost += device.mux_cost * (chunks - 1) * mem.width
            cost += device.mux_cost * chunks * _groups(mem) if chunks > 1 and not mem.rom else 0
            cost += device.emulation_cost * emulation
            yield prim, unit, chunks, replicas, cost


def _groups(mem: Memory) -> int:
    """Write enables per word."""
    return -(-mem.width // mem.write_group) if mem.write_group else 1


def memory_mapping(mem: Memory, device: Device) -> MemoryMapping:
    """The cheapest way to build `mem` (soft logic, LUT RAM or block RAM) and its resources.

    LUTs and FFs beside the primitives: the read mux over the chunks (a LUT6 is a 4:1 mux)
    and its registered select; the bypass mux of a transparent read port; a LUT RAM's
    registered read address (its read is asynchronous). (The registers that hold a
    transparent port's write data are the engine's own pipeline registers: LOGIC_FFS.)
    """
    logic = int(mem.bits * (device.logic_cost_rom if mem.rom else device.logic_cost_ram))   # yosys compares it as an int
    best = min(_tilings(mem, device), key=lambda t: t[4], default=None)
    if best is None or logic <= best[4]:
        # A ROM becomes LUT6 tables (64 words each) behind its read register; a RAM, registers.
        tables = -(-mem.depth // 64)
        luts = mem.width * (tables + -(-(tables - 1) // 3)) if mem.rom else 2 * mem.bits
        ffs = mem.width if mem.rom else mem.bits
        return MemoryMapping("logic", mem.width, 1, 0, float(logic), 0.0, luts, ffs)
    prim, unit, chunks, replicas, cost = best
    luts = replicas * prim.luts + mem.width * -(-(chunks - 1) // 3) + (chunks * _groups(mem) if chunks > 1 else 0)
    ffs = addr_width(chunks) if chunks > 1 else 0
    if prim.luts:
        ffs += addr_width(mem.depth)
    if mem.transparent:
        luts += mem.width
    return MemoryMapping(prim.name, unit, chunks, replicas, cost, replicas * prim.bram36, luts, ffs)


def mapping_json(m: MemoryMapping) -> dict:
    return {"primitive": m.primitive, "replicas": m.replicas, "bram36": m.bram36, "luts": m.luts}
