"""hw.axi.AxisPixelIn: AXI4-Stream pixels to the Pixel stream, framing errors recovered."""
import pytest

from hw.axi import AxisPixelIn
from sim.runner import run_testbench, write_verilog


def run(tmp_path, pixels, frames, simulator="verilator"):
    source = write_verilog(AxisPixelIn(pixels), "axis_pixel_in", tmp_path / "axis_pixel_in.v")
    return run_testbench([source], "axis_pixel_in", "sim.tb.axi_pixel_in", tmp_path / "build",
                         params={"pixels": pixels, "frames": frames}, simulator=simulator)


def test_good_short_and_long_images_keep_the_stream_aligned(tmp_path):
    # 13 pixels = 2 beats. Short (1 beat) and long (3-4 beats) frames between good ones:
    # each must still yield exactly 13 pixels, and the next image must be intact.
    frames = [13, 13, 5, 13, 24, 13, 9, 31, 13, 16, 13]
    result = run(tmp_path, 13, frames)
    assert result.tests == 1 and result.failed == 0


def test_whole_beats_on_icarus(tmp_path):
    result = run(tmp_path, 16, [16, 16, 8, 16, 32, 16], simulator="icarus")
    assert result.failed == 0


@pytest.mark.parametrize("pixels", [0, -1, 2.0, True])
def test_pixels_per_image_is_validated(pixels):
    with pytest.raises(ValueError, match=f"pixels_per_image must be an integer >= 1, not {pixels!r}"):
        AxisPixelIn(pixels)
