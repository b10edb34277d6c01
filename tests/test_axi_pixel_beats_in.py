"""hw.axi.AxisPixelBeatsIn: AXI4-Stream beats handed on whole (8 pixels per beat, one beat per
cycle) to a dense encoding engine, framing errors recovered, under back-pressure."""
import re

import pytest

from hw.axi import AxisPixelBeatsIn
from sim.runner import cocotb_tests_in
from sim.tb.harness import run_component

TB_TESTS = cocotb_tests_in("sim.tb.axi_pixel_beats_in")


def run(pixels, frames, simulator="icarus", **params):
    config = {"pixels": pixels}
    return run_component(AxisPixelBeatsIn(pixels), "axis_pixel_beats_in", "sim.tb.axi_pixel_beats_in",
                         dict(config, frames=frames, **params), config, simulator)


# 24 pixels = 3 beats. Short (1-2 beats) and long (4-5 beats) frames between good ones: each
# must still yield exactly 3 beats, and the next image must be intact.
FRAMES_24 = [24, 24, 5, 24, 40, 24, 16, 33, 24, 8, 24, 24]


def test_good_short_and_long_images_keep_the_stream_aligned_under_back_pressure():
    assert run(24, FRAMES_24).passed == TB_TESTS


def test_one_beat_per_cycle_back_to_back():
    assert run(784, [784] * 4, full_rate=True).passed == TB_TESTS


def test_pixels_per_image_is_validated():
    with pytest.raises(ValueError, match=re.escape("pixels_per_image must be an integer >= 1, not 0")):
        AxisPixelBeatsIn(0)


def test_an_image_of_a_partial_last_beat_takes_it_whole():
    """13 pixels: 2 beats, the host zero-pads the second (docs/build.md, "Input packing");
    tests/test_dense_model_space.py runs such images through a whole build."""
    assert AxisPixelBeatsIn(13).beats_per_image == 2
    assert AxisPixelBeatsIn(16).beats_per_image == 2
