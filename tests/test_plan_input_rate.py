"""The plan's input rate (gen.plan.input_cycles): the AXI beats go whole (8 pixels per cycle)
into a dense encoding engine (hw.axi.AxisPixelBeatsIn), one pixel per cycle into the event
one (hw.axi.AxisPixelIn), and the top is built with the image's pixels either way."""
import numpy as np
import pytest

from gen.boards import get_board
from gen.errors import PlanError
from gen.ir.random_net import random_network
from gen.plan import candidate_families, make_plan
from hw.axi import AxisPixelBeatsIn, AxisPixelIn

BOARD = get_board("pynq-z2")


def plans(net, families) -> bool:
    try:
        make_plan(net, BOARD, families=families)
    except PlanError:
        return False
    return True


def net_with_dense_encoding():
    """The first small random chain whose encoding layer the dense family takes (8-pixel
    beats tile the channel planes: one channel, or H·W a multiple of 8)."""
    for seed in range(200):
        net = random_network(np.random.default_rng(7000 + seed), max_layers=3, shortcuts=False, name=f"in{seed}")
        first = net.layers[0].name
        if "dense" in candidate_families(net, None)[first] and plans(net, {first: "dense"}):
            return net
    raise AssertionError("no random network with a dense-capable encoding layer")


@pytest.mark.parametrize("family", ["dense", "event"])
def test_input_cycles_follow_the_encoding_engine(family):
    net = net_with_dense_encoding()
    pixels = int(np.prod(net.input_shape))
    plan = make_plan(net, BOARD, families={net.layers[0].name: family})
    assert plan.input_cycles == (-(-pixels // 8) if family == "dense" else pixels)   # the last beat padded
    assert plan.cycles_per_image == max(plan.input_cycles, plan.bottleneck.cycles)
    assert plan.to_json()["input_cycles"] == plan.input_cycles


def test_the_wide_input_takes_whole_beats_of_the_image():
    assert AxisPixelBeatsIn(784).beats_per_image == 98
    assert AxisPixelBeatsIn(81).beats_per_image == 11      # the last beat: 1 pixel, 7 of padding
    assert isinstance(AxisPixelIn(784), AxisPixelIn)   # the event path keeps its one-pixel input
