"""hw.axi.AxisPixelIn: AXI4-Stream pixels to the Pixel stream, framing errors recovered."""
import pytest

from hw.axi import AxisPixelIn
from sim.runner import cocotb_tests_in, run_testbench, write_verilog
from sim.tb.harness import kick_comb_blocks_at_time_zero


# Every cocotb test of the bench must have run and passed (the runner raises on a failure).
TB_TESTS = cocotb_tests_in("sim.tb.axi_pixel_in")


def run(tmp_path, pixels, frames, simulator="icarus"):
    source = write_verilog(AxisPixelIn(pixels), "axis_pixel_in", tmp_path / "axis_pixel_in.v")
    if simulator == "icarus":   # comb blocks whose inputs never change must run once (see harness)
        source.write_text(kick_comb_blocks_at_time_zero(source.read_text()))
    return run_testbench([source], "axis_pixel_in", "sim.tb.axi_pixel_in", tmp_path / "build",
                         params={"pixels": pixels, "frames": frames}, simulator=simulator)


# 13 pixels = 2 beats. Short (1 beat) and long (3-4 beats) frames between good ones:
# each must still yield exactly 13 pixels, and the next image must be intact.
FRAMES_13 = [13, 13, 5, 13, 24, 13, 9, 31, 13, 16, 13]


def test_good_short_and_long_images_keep_the_stream_aligned(tmp_path):
    result = run(tmp_path, 13, FRAMES_13)
    assert result.passed == TB_TESTS


def test_whole_beats(tmp_path):
    result = run(tmp_path, 16, [16, 16, 8, 16, 32, 16])
    assert result.passed == TB_TESTS


@pytest.mark.slow
def test_framing_on_verilator(tmp_path):
    assert run(tmp_path, 13, FRAMES_13, simulator="verilator").passed == TB_TESTS


@pytest.mark.parametrize("pixels", [0, -1, 2.0, True])
def test_pixels_per_image_is_validated(pixels):
    with pytest.raises(ValueError, match=f"pixels_per_image must be an integer >= 1, not {pixels!r}"):
        AxisPixelIn(pixels)
