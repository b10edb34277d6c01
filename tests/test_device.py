"""The device description (gen/boards/device.py): the plan prices memories and logic with the
board's device, so a new FPGA family is a new device module and nothing in gen/engines."""
import dataclasses
from pathlib import Path

import pytest

from gen.boards import get_board
from gen.boards.device import frozen_logic
from gen.boards.xc7 import XC7
from gen.errors import PlanError
from gen.frontend import compile_checkpoint
from gen.plan import make_plan

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def net():
    return compile_checkpoint(REPO / "examples" / "mnist_ternary_t2.pt").network


def board_with(device):
    return dataclasses.replace(get_board("pynq-z2"), device=device)


def test_the_pynq_z2_prices_with_the_xc7_device(net):
    board = get_board("pynq-z2")
    assert board.device is XC7 and board.to_json()["device"] == "xc7"
    plan = make_plan(net, board)
    assert plan.estimate["luts"] > 0


def test_the_logic_fit_comes_from_the_device(net):
    """Doubling every fixed LUT coefficient of the event engines moves the estimate by exactly that."""
    logic = {name: dict(fit) for name, fit in XC7.logic.items()}
    for fit in logic.values():
        if "luts" in fit:
            fit["luts"] = (2 * fit["luts"][0], fit["luts"][1])
    doubled = dataclasses.replace(XC7, logic=frozen_logic(logic))
    events = {l.name: "event" for l in net.layers}      # the planner would pick dense for some by default
    base = make_plan(net, get_board("pynq-z2"), lanes={l.name: 1 for l in net.layers}, families=events)
    other = make_plan(net, board_with(doubled), lanes={l.name: 1 for l in net.layers}, families=events)
    assert {a.family for a in base.layers} == {"event"}
    for a, b in zip(base.layers, other.layers):
        assert b.estimate["luts"] - a.estimate["luts"] == XC7.logic_of(a.engine)["luts"][0]


def test_the_memory_primitives_come_from_the_device(net):
    """A device without block RAM builds every memory from LUT RAM or logic."""
    no_bram = dataclasses.replace(XC7, ram_primitives=tuple(p for p in XC7.ram_primitives if p.bram36 == 0))
    plan = make_plan(net, board_with(no_bram), lanes={l.name: 1 for l in net.layers})
    assert plan.estimate["bram36"] == 0
    assert all(m["mapping"]["primitive"] in ("RAM32M", "RAM64M", "logic")
               for layer in plan.to_json()["layers"] for m in layer["memories"])


def test_a_device_without_an_engines_fit_is_one_clear_error(net):
    logic = {name: fit for name, fit in XC7.logic.items() if name != "SpikingLayer"}
    partial = dataclasses.replace(XC7, name="newfamily", logic=frozen_logic(logic))
    with pytest.raises(PlanError, match=r"the newfamily device has no logic model for the SpikingLayer engine"):
        make_plan(net, board_with(partial), families={"conv2": "event"})
    # Left to choose, the planner prices only the engines the device has a model for.
    chosen = make_plan(net, board_with(partial)).layers
    assert "SpikingLayer" not in {lp.engine for lp in chosen}
    assert "SpikingLayer" in {lp.engine for lp in make_plan(net, get_board("pynq-z2"),
                                                            families={"conv2": "event"}).layers}
