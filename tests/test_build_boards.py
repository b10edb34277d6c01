"""Board registry and the PYNQ-Z2 Vivado Tcl, run by tclsh with the Vivado commands stubbed."""
import shutil
import subprocess

import pytest

from gen.boards import board_names, get_board
from gen.boards.pynq_z2 import RUN_COMMAND, SCRIPT_NAME, render_tcl

# Every Vivado command falls through to `unknown`, which records it; the few whose result
# the script uses answer like Vivado. add_files refuses a file that does not exist.
HARNESS = r"""
set ::calls {}
proc unknown {args} { lappend ::calls $args; return "" }
proc add_files {args} {
    set f [lindex $args end]
    if {![file exists $f] && ![string match *system_wrapper.v $f]} { error "add_files: no such file $f" }
    lappend ::calls [list add_files $f]
}
proc get_property {name args} {
    if {$name eq "PROGRESS"} { return "100%" }
    if {$name eq "DIRECTORY"} { return "/nonexistent/impl_1" }
    return ""
}
proc make_wrapper {args} { return "/nonexistent/system_wrapper.v" }
proc glob {args} { return [list "/nonexistent/system.hwh"] }
rename file _file
proc file {sub args} {
    if {$sub eq "copy"} { lappend ::calls [list file copy {*}$args]; return }
    return [_file $sub {*}$args]
}
source [lindex $argv 0]
foreach c $::calls { puts $c }
"""


def test_registry_knows_pynq_z2_with_its_capacity():
    board = get_board("pynq-z2")
    assert board.part == "xc7z020clg400-1"
    assert (board.capacity.luts, board.capacity.ffs, board.capacity.bram36, board.capacity.dsps) == \
        (53_200, 106_400, 140, 220)
    assert board.clock_mhz == 100.0
    assert board_names() == ["pynq-z2"]


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(ValueError, match="board must be one of pynq-z2, not 'zcu104'"):
        get_board("zcu104")


def test_unsafe_names_are_refused():
    with pytest.raises(ValueError, match="stem must match"):
        render_tcl(rtl_files=["rtl/a.v"], top="t", stem="a b", model="m", part="p", clock_mhz=100)


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is not installed")
def test_tcl_runs_with_stubbed_vivado_and_names_only_existing_files(tmp_path):
    (tmp_path / "rtl").mkdir()
    files = ["rtl/tern_top.v", "rtl/tern_conv1.v"]
    for f in files:
        (tmp_path / f).write_text("module x; endmodule\n")
    board = get_board("pynq-z2")
    [script] = board.write_project(tmp_path, rtl_files=files, top="tern_top", stem="tern_mnist", model="mnist")
    assert script.name == SCRIPT_NAME and RUN_COMMAND == "vivado -mode batch -source build_bitstream.tcl"
    harness = tmp_path / "harness.tcl"
    harness.write_text(HARNESS)
    out = subprocess.run(["tclsh", str(harness), str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    calls = out.stdout.splitlines()
    assert any(c.startswith("create_project tern") and "xc7z020clg400-1" in c for c in calls)
    added = [c.split(" ", 1)[1] for c in calls if c.startswith("add_files ")]
    assert added[:2] == [str(tmp_path / f) for f in files]
    assert any("CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ 100" in c for c in calls)
    assert any("create_bd_cell -type module -reference tern_top tern_0" in c for c in calls)
    assert any("axi_dma:7.1" in c for c in calls)
    assert any("c_m_axis_mm2s_tdata_width 64" in c and "c_include_sg 0" in c for c in calls)
    copies = [c for c in calls if c.startswith("file copy")]
    assert copies[0].endswith(str(tmp_path / "tern_mnist.bit")) and copies[1].endswith(str(tmp_path / "tern_mnist.hwh"))


def test_missing_rtl_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing: \\['rtl/none.v'\\]"):
        get_board("pynq-z2").write_project(tmp_path, rtl_files=["rtl/none.v"], top="t", stem="s", model="m")
