"""The boards Tern can target: one explicit registry, no directory scans.

A `Board` knows its FPGA part, its capacity (what the synthesis report is checked
against), its device description (gen.boards.device: memory primitives and the engines'
fitted logic, what the plan prices with; gen/boards/xc7.py for Xilinx 7-series), the fabric
clock the accelerator runs at, and writes its own vendor project (`write_project`). An unknown board name is an error that lists the known ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gen.boards.device import Device


@dataclass(frozen=True)
class Capacity:
    luts: int
    ffs: int
    bram36: int
    dsps: int

    def to_json(self) -> dict:
        return {"luts": self.luts, "ffs": self.ffs, "bram36": self.bram36, "dsps": self.dsps}


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    capacity: Capacity
    clock_mhz: float                 # the accelerator's clock (FCLK0 on Zynq)
    description: str
    write_project: Callable[..., list[Path]]
    device: Device

    def to_json(self) -> dict:
        return {"name": self.name, "part": self.part, "clock_mhz": self.clock_mhz,
                "capacity": self.capacity.to_json(), "description": self.description, "device": self.device.name}


# The board modules, imported at module level but after Board and Capacity, which they import.
from gen.boards import pynq_z2  # noqa: E402


def _boards() -> dict[str, Board]:
    return {pynq_z2.BOARD.name: pynq_z2.BOARD}


def board_names() -> list[str]:
    return sorted(_boards())


def get_board(name) -> Board:
    boards = _boards()
    if name not in boards:
        raise ValueError(f"board must be one of {', '.join(sorted(boards))}, not {name!r}")
    return boards[name]
