"""A device description: what the planner needs to know about an FPGA family to price a plan.

    Device(name, ram_primitives, ..., logic)      device.logic_of(engine) -> {coefficient: value}

A board (gen.boards) names its device; the plan hands it to every engine's cost model through
`EngineContext.device`. Two parts:

* the memory primitives, as yosys's memory_libmap library describes them (gen.engines.memory
  prices each engine memory with them: block RAM, LUT RAM or soft logic), and its costs;
* the fitted logic model: per engine (its hw class name), the coefficients of its LUT/FF
  estimate, fitted to synthesis of that engine on this family. The engine decides what the
  coefficients mean (gen/engines/<engine>.py); the device only holds the numbers.

A new FPGA family is one more module like gen/boards/xc7.py: its primitives and a fit of
each engine's coefficients (benchmarks/plan_calibration.py, benchmarks/dense_engine.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from gen.errors import PlanError


@dataclass(frozen=True)
class RamPrimitive:
    name: str
    bram36: float            # per replica: RAMB18 = 0.5, RAMB36 = 1, a cascaded pair = 2
    luts: int                # per replica, for LUT RAM
    cost: int                # the library's cost per replica
    widthscale: int          # the part of `cost` that scales with the bits used (LUT RAM)
    abits: int               # address bits at the narrowest width
    widths: tuple[int, ...]  # data widths, narrowest first; each halves the words
    byte: int                # write-enable granularity (0: the whole word)
    rom: bool                # may hold a ROM (memory_libmap prunes ROMs from LUT RAM)


@dataclass(frozen=True)
class Device:
    name: str                                   # e.g. "xc7" (Xilinx 7-series)
    ram_primitives: tuple[RamPrimitive, ...]
    logic_cost_rom: float                       # memory_libmap's cost of a ROM bit in soft logic
    logic_cost_ram: float                       # ... and of a RAM bit
    mux_cost: float                             # per bit of read mux / write demux over the chunks
    emulation_cost: float                       # per point of emulated port behaviour
    top: tuple[int, int, int]                   # the top's (LUTs, FFs, per layer): AXI, registers, counters
    logic: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def logic_of(self, engine: str) -> MappingProxyType:
        """The fitted coefficients of `engine` (its hw class name) on this device."""
        if engine not in self.logic:
            raise PlanError(f"the {self.name} device has no logic model for the {engine} engine: fit one "
                            f"to synthesis and add it to its device description (gen/boards/{self.name}.py); "
                            f"it has {', '.join(sorted(self.logic))}")
        return self.logic[engine]


def frozen_logic(table: dict[str, dict[str, object]]) -> MappingProxyType:
    return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in table.items()})
