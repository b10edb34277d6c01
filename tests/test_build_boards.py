"""Board registry and the PYNQ-Z2 Vivado Tcl, run by tclsh with the Vivado commands stubbed.

The stubs answer like Vivado where the script reads an answer: the timing of impl_1
(STUB_WNS, STUB_WHS) and the installed board parts (STUB_BOARD_PART, empty for none).
"""
import os
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
    if {$name eq "STATS.WNS"} { return $::env(STUB_WNS) }
    if {$name eq "STATS.WHS"} { return $::env(STUB_WHS) }
    return ""
}
proc get_board_parts {args} { lappend ::calls [list get_board_parts {*}$args]; return $::env(STUB_BOARD_PART) }
proc make_wrapper {args} { return "/nonexistent/system_wrapper.v" }
proc glob {args} { return [list "/nonexistent/system.hwh"] }
rename file _file
proc file {sub args} {
    if {$sub eq "copy" || $sub eq "delete"} { lappend ::calls [list file $sub {*}$args]; return }
    return [_file $sub {*}$args]
}
set failed [catch {source [lindex $argv 0]} message]
foreach c $::calls { puts $c }
if {$failed} { puts stderr $message; exit 1 }
"""
BOARD_PART = "tul.com.tw:pynq-z2:part0:1.0"


def project(tmp_path, files=("rtl/tern_top.v", "rtl/tern_conv1.v")):
    (tmp_path / "rtl").mkdir(exist_ok=True)
    for f in files:
        (tmp_path / f).write_text("module x; endmodule\n")
    [script] = get_board("pynq-z2").write_project(tmp_path, rtl_files=list(files), top="tern_top",
                                                  stem="tern_mnist", model="mnist")
    return script


def run_tcl(tmp_path, script, *, wns="0.412", whs="0.031", board_part=BOARD_PART):
    harness = tmp_path / "harness.tcl"
    harness.write_text(HARNESS)
    env = {**os.environ, "STUB_WNS": wns, "STUB_WHS": whs, "STUB_BOARD_PART": board_part}
    return subprocess.run(["tclsh", str(harness), str(script)], capture_output=True, text=True, timeout=60, env=env)


needs_tclsh = pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is not installed")


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


@needs_tclsh
def test_tcl_runs_with_stubbed_vivado_and_names_only_existing_files(tmp_path):
    files = ["rtl/tern_top.v", "rtl/tern_conv1.v"]
    script = project(tmp_path, files)
    assert script.name == SCRIPT_NAME and RUN_COMMAND == "vivado -mode batch -source build_bitstream.tcl"
    out = run_tcl(tmp_path, script)
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
    assert "Tern: timing met at FCLK0 = 100 MHz (WNS 0.412 ns, WHS 0.031 ns)" in out.stdout


@needs_tclsh
@pytest.mark.parametrize("wns, whs, shown", [("-0.254", "0.031", "WNS = -0.254 ns (setup), WHS = 0.031 ns (hold)"),
                                             ("0.100", "-0.012", "WNS = 0.100 ns (setup), WHS = -0.012 ns (hold)")])
def test_tcl_stops_with_the_wns_when_timing_is_missed_and_copies_no_bitstream(tmp_path, wns, whs, shown):
    out = run_tcl(tmp_path, project(tmp_path), wns=wns, whs=whs)
    assert out.returncode != 0
    assert f"Tern: timing not met at FCLK0 = 100 MHz: {shown}; no bitstream copied." in out.stderr
    calls = out.stdout.splitlines()
    assert not [c for c in calls if c.startswith("file copy")]
    # An earlier run's pair is deleted before anything is built: nothing stale passes for this run's.
    deleted = next(i for i, c in enumerate(calls) if c.startswith("file delete"))
    assert str(tmp_path / "tern_mnist.bit") in calls[deleted] and str(tmp_path / "tern_mnist.hwh") in calls[deleted]
    assert deleted < next(i for i, c in enumerate(calls) if c.startswith("create_project"))


@needs_tclsh
def test_tcl_refuses_a_run_without_timing_results(tmp_path):
    out = run_tcl(tmp_path, project(tmp_path), wns="", whs="")
    assert out.returncode != 0 and "Tern: no timing results for impl_1" in out.stderr
    assert not [c for c in out.stdout.splitlines() if c.startswith("file copy")]


@needs_tclsh
def test_without_the_board_files_the_ps7_gets_the_pynq_z2_settings(tmp_path):
    out = run_tcl(tmp_path, project(tmp_path), board_part="")
    assert out.returncode == 0, out.stderr
    calls = out.stdout.splitlines()
    assert not any(c.startswith("set_property board_part") for c in calls)
    assert any('apply_board_preset "0"' in c for c in calls)
    settings = " ".join(c for c in calls if c.startswith("set_property -dict"))
    for expected in ("CONFIG.PCW_UIPARAM_DDR_PARTNO {MT41K256M16 RE-125}",
                     "CONFIG.PCW_UIPARAM_DDR_BUS_WIDTH {16 Bit}",
                     "CONFIG.PCW_UIPARAM_DDR_DRAM_WIDTH {16 Bits}",
                     "CONFIG.PCW_UIPARAM_DDR_MEMORY_TYPE {DDR 3 (Low Voltage)}",
                     "CONFIG.PCW_CRYSTAL_PERIPHERAL_FREQMHZ 50",
                     "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ 100"):
        assert expected in settings, expected
    assert "32 Bit" not in settings
    assert "board files are not installed" in out.stdout and "board_files" in out.stdout


@needs_tclsh
def test_with_the_board_files_the_ps7_takes_their_preset(tmp_path):
    out = run_tcl(tmp_path, project(tmp_path), board_part=BOARD_PART)
    assert out.returncode == 0, out.stderr
    calls = out.stdout.splitlines()
    assert any(c.startswith(f"set_property board_part {BOARD_PART}") for c in calls)
    assert any('apply_board_preset "1"' in c for c in calls)
    assert "PCW_UIPARAM_DDR_PARTNO" not in out.stdout and "board files are not installed" not in out.stdout


def test_missing_rtl_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing: \\['rtl/none.v'\\]"):
        get_board("pynq-z2").write_project(tmp_path, rtl_files=["rtl/none.v"], top="t", stem="s", model="m")
