"""hw.axi.AxisResultOut: Result beats to int32 words on AXI4-Stream, with back-pressure."""
import pytest

from hw.axi import AxisResultOut, result_beats
from sim.runner import cocotb_tests_in, run_testbench, write_verilog
from sim.tb.harness import kick_comb_blocks_at_time_zero


# Every cocotb test of the bench must have run and passed (the runner raises on a failure).
TB_TESTS = cocotb_tests_in("sim.tb.axi_result_out")


@pytest.mark.parametrize("logit_width, classes", [(20, 10), (32, 3)])
def test_results_are_packed_as_little_endian_int32(tmp_path, logit_width, classes):
    source = write_verilog(AxisResultOut(logit_width, classes), "axis_result_out", tmp_path / "out.v")
    source.write_text(kick_comb_blocks_at_time_zero(source.read_text()))    # Icarus: see harness
    result = run_testbench([source], "axis_result_out", "sim.tb.axi_result_out", tmp_path / "build",
                           params={"logit_width": logit_width, "classes": classes, "images": 40},
                           simulator="icarus")
    assert result.passed == TB_TESTS


def test_beats_per_result():
    assert result_beats(10) == 6     # 11 words, padded to 12
    assert result_beats(3) == 2      # 4 words exactly


def test_logits_wider_than_int32_are_refused():
    with pytest.raises(ValueError, match="logit_width must be at most 32 \\(logits travel as int32\\), not 33"):
        AxisResultOut(33, 10)
