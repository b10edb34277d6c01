"""ReadoutLayer (queue + accumulator over T steps + argmax) against gen.ir.golden."""
import re
import subprocess

import numpy as np
import pytest
from amaranth.back import verilog

from hw.geometry import DenseGeometry
from hw.readout import ReadoutLayer, result_layout
from sim.runner import cocotb_tests_in
from sim.tb.harness import run_component
from sim.toolchain import available_simulators, have_icarus


# Every cocotb test of the bench must have run and passed (the runner raises on a failure).
TB_TESTS = cocotb_tests_in("sim.tb.readout")


def run_readout(geometry, lanes, steps=3, weight_width=8, weight_style="random", transactions=10_000,
                simulator="verilator", seed=None):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    from sim.tb.readout import build
    config = {"geometry": geometry, "lanes": lanes, "steps": steps, "weight_width": weight_width,
              "weight_style": weight_style, "weight_seed": 11}
    *_, layer = build(config)
    return run_component(layer, "readout_layer", "sim.tb.readout", dict(config, transactions=transactions),
                         config, simulator, seed)


DENSE = {"kind": "dense", "in_features": 32, "out_features": 10}


@pytest.mark.parametrize("geometry,lanes,steps,style", [(DENSE, 5, 3, "random"), (DENSE, 10, 1, "extreme")])
def test_readout_verilator(geometry, lanes, steps, style):
    assert run_readout(geometry, lanes, steps, weight_style=style).passed == TB_TESTS


def test_readout_icarus():
    assert run_readout(DENSE, 2, 2, transactions=1_500, simulator="icarus").passed == TB_TESTS


@pytest.mark.slow
@pytest.mark.parametrize("geometry,lanes,steps,style", [
    (DENSE, 1, 8, "max"),
    ({"kind": "dense", "in_features": 50, "out_features": 3}, 3, 4, "random"),
    ({"kind": "conv", "in_channels": 2, "in_height": 4, "in_width": 4, "out_channels": 2,
      "kernel": 3, "stride": 1, "padding": 0}, 2, 2, "random"),
])
def test_readout_sweep(geometry, lanes, steps, style):
    assert run_readout(geometry, lanes, steps, weight_style=style, transactions=20_000).passed == TB_TESTS


def test_result_layout_matches_the_contract():
    layout = result_layout(18, 10)
    assert layout.members["cls"].width == 4 and layout.size == 10 * 18 + 4
    assert result_layout(8, 1).members["cls"].width == 1


@pytest.mark.parametrize("change,message", [
    ({"logit_width": 1}, "logit_width must be an integer >= 2, not 1"),
    ({"steps": 0}, "steps must be an integer >= 1, not 0"),
    ({"lanes": 4}, r"lanes must be one of \[1, 2, 5, 10\]"),
    ({"bias": np.zeros(9, dtype=np.int64)}, r"bias must have shape \(10,\), not \(9,\)"),
])
def test_readout_rejects_bad_parameters(change, message):
    args = dict(bias=np.zeros(10, dtype=np.int64), lanes=2, weight_width=8, steps=2, current_width=12,
                logit_width=16)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        ReadoutLayer(DenseGeometry(4, 10), np.zeros((10, 4), dtype=np.int64), **args)


# -- Icarus, SystemVerilog rules: a logit that never leaves 0 ------------------------------

ICARUS_TB = """`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 1;
  always #5 clk = ~clk;
  reg valid = 0;
  reg [{in_width}-1:0] payload = 0;
  wire ready, result_valid;
  wire [{out_width}-1:0] result;
  {name} dut(.clk(clk), .rst(rst), .events_in__valid(valid), .events_in__payload(payload),
             .events_in__ready(ready), .result__valid(result_valid), .result__payload(result),
             .result__ready(1'b1));
  reg [{in_width}-1:0] beats [0:{beats}-1];
  integer i, results = 0;
  initial begin
{init}
    repeat (2) @(negedge clk);
    rst = 0;
    for (i = 0; i < {beats}; i = i + 1) begin   // drive on the falling edge, the DUT samples on the rising
      payload = beats[i]; valid = 1;
      @(posedge clk); while (!ready) @(posedge clk);
      @(negedge clk);
    end
    valid = 0;
  end
  always @(posedge clk) if (!rst && result_valid) begin
    $display("RESULT %b", result);
    results = results + 1;
    if (results == {images}) $finish;
  end
  initial begin #{timeout}; $display("TIMEOUT"); $finish; end
endmodule
"""


def run_readout_on_icarus(layer, images, tmp_path) -> list[str]:
    """Drive `layer` with `images` (each T lists of (addr, neg) spikes) on Icarus exactly as
    the cocotb runs build it (-g2012, sim.tb.harness's time-0 kick of the `always @*` blocks)
    and return each result beat as Icarus prints it: binary, MSB first, X/Z kept."""
    from sim.tb.harness import kick_comb_blocks_at_time_zero
    from sim.tb.streams import pack

    in_layout = layer.events_in.payload.shape()
    words = [pack(in_layout, spike) for image in images for step in image
             for spike in [{"addr": a, "neg": n} for a, n in step] + [{"eos": 1}]]
    (tmp_path / "readout.v").write_text(
        kick_comb_blocks_at_time_zero(verilog.convert(layer, name="readout", emit_src=False)))
    init = "\n".join(f"    beats[{i}] = {in_layout.size}'d{w};" for i, w in enumerate(words))
    (tmp_path / "tb.v").write_text(ICARUS_TB.format(
        name="readout", in_width=in_layout.size, out_width=layer.result_layout.size, beats=len(words),
        init=init, images=len(images), timeout=100 * (len(words) + 50 * len(images))))
    subprocess.run(["iverilog", "-g2012", "-s", "tb", "-o", str(tmp_path / "tb.vvp"),
                    str(tmp_path / "tb.v"), str(tmp_path / "readout.v")], check=True, capture_output=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "tb.vvp")], check=True, capture_output=True, text=True)
    assert "TIMEOUT" not in out.stdout, out.stdout[-2000:]
    return re.findall(r"^RESULT ([01xz]+)$", out.stdout, re.M)


@pytest.mark.skipif(not have_icarus(), reason="Icarus Verilog is not installed")
@pytest.mark.parametrize("lanes", [1, 4])
def test_readout_with_one_input_has_no_x_on_icarus(lanes, tmp_path):
    """One input neuron, biases with zeros: logit 0 is 0 in the first image (no spikes) and
    logit 3 in every image (weight 0, bias 0). A logit register that keeps its declared
    initial value must still reach the result: the whole network's readout after a
    single-neuron layer came out as X here (Icarus only; Verilator has no X)."""
    from sim.tb.streams import unpack

    steps = 5
    weights = np.array([[3], [-5], [7], [0]], dtype=np.int64)
    bias = np.array([0, 2, -1, 0], dtype=np.int64)
    layer = ReadoutLayer(DenseGeometry(1, 4), weights, bias, lanes=lanes, weight_width=8, steps=steps,
                         current_width=6, logit_width=10, queue_depth=4)
    images = [[[]] * steps,                                   # no spike: logits = T·b
              [[(0, 0)], [], [(0, 0)], [(0, 1)], [(0, 0)]],   # +2 in all
              [[(0, 1)], [(0, 0)], [], [], []]]               # cancels: back to T·b
    beats = run_readout_on_icarus(layer, images, tmp_path)
    assert len(beats) == len(images)
    for i, (beat, image) in enumerate(zip(beats, images)):
        assert set(beat) <= {"0", "1"}, f"image {i}: result has unknown bits {beat}"
        total = sum((-1 if neg else 1) for step in image for _, neg in step)
        logits = steps * bias + weights[:, 0] * total
        assert unpack(layer.result_layout, int(beat, 2)) == {"logits": logits.tolist(),
                                                             "cls": int(np.argmax(logits))}
