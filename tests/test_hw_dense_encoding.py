"""DenseEncodingLayer (8-pixel input beats, the image replayed T times, one pixel window per
cycle): bit-exact against gen.ir.golden under random idle input and back-pressure; its period
back to back equal to the conv schedule; PixelReplay's parameter checks; PlaneAligner cutting
beats that straddle channel planes into plane words under random valid and ready."""
import json

import pytest

from hw.dense_encoding import PixelReplay, PlaneAligner
from sim.tb.harness import run_component
from sim.toolchain import available_simulators


def run_encoding(geometry, lanes, kind, steps, testcase="dense_encoding_matches_reference", tmp_path=None,
                 seed=None, **extra):
    if "verilator" not in available_simulators():
        pytest.skip("verilator is not installed")
    from sim.tb.dense_encoding import build
    config = {"geometry": geometry, "lanes": lanes, "kind": kind, "steps": steps, "leak_shift": 2,
              "weight_width": 4, "weight_seed": 9}
    params = dict(config, images=3, **extra)
    if tmp_path is not None:
        params["report"] = str(tmp_path / "report.json")
    return run_component(build(config)[2], "dense_encoding", "sim.tb.dense_encoding", params, config, "verilator",
                         seed, testcase=testcase)


GEOMETRY = {"kind": "conv", "in_channels": 1, "in_height": 8, "in_width": 8, "out_channels": 4, "kernel": 3,
            "stride": 1, "padding": 1}


def test_dense_encoding_matches_golden():
    assert run_encoding(GEOMETRY, 2, "ternary", 2, idle=0.3, backpressure=0.4).passed == \
        ("dense_encoding_matches_reference",)


def test_dense_encoding_period_matches_the_schedule(tmp_path):
    result = run_encoding(GEOMETRY, 2, "ternary", 2, testcase="dense_encoding_cycles", tmp_path=tmp_path)
    assert result.passed == ("dense_encoding_cycles",)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["periods"][1:] == [report["model_cycles"]] * 2


@pytest.mark.parametrize("kwargs,message", [
    ({"channels": 2, "height": 3, "width": 3},
     "pixels_per_beat must divide the 9 positions of a channel when there are 2 channels"),
    ({"steps": 0}, "steps must be an integer >= 1, not 0"),
])
def test_pixel_replay_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PixelReplay(**{"channels": 1, "height": 8, "width": 8, "steps": 2, **kwargs})


def aligner_words(channels, positions, images):
    """(pixels, last) of every plane word PlaneAligner must send for these flat images."""
    words = -(-positions // 8)
    return [(img[c * positions + 8 * j: c * positions + min(8 * j + 8, positions)],
             c == channels - 1 and j == words - 1)
            for img in images for c in range(channels) for j in range(words)]


@pytest.mark.parametrize("channels,positions", [(2, 35), (3, 1), (2, 3), (3, 9), (2, 12), (4, 5), (1, 9)])
def test_plane_aligner_cuts_straddling_beats_into_plane_words(channels, positions):
    """Images of C·H·W pixels packed back to back (the host's packing, the last beat
    zero-padded), random input gaps and output back-pressure: out come the C planes' words,
    each plane's last one partial, `last` on the image's final word, images kept apart."""
    import random

    from amaranth.sim import Simulator

    rng = random.Random(channels * 100 + positions)
    dut = PlaneAligner(channels, positions)
    images = [[rng.randrange(256) for _ in range(channels * positions)] for _ in range(3)]
    beats = []
    for img in images:
        padded = img + [0] * (-len(img) % 8)
        beats += [(padded[i:i + 8], i + 8 == len(padded)) for i in range(0, len(padded), 8)]
    expected, got = aligner_words(channels, positions, images), []

    async def bench(ctx):
        sent = 0
        for _ in range(40 * len(expected)):
            offer = sent < len(beats) and rng.random() < 0.7
            ctx.set(dut.pixels.valid, offer)
            if offer:
                ctx.set(dut.pixels.payload.pixels, beats[sent][0])
                ctx.set(dut.pixels.payload.last, beats[sent][1])
            take = rng.random() < 0.6
            ctx.set(dut.words.ready, take)
            if take and ctx.get(dut.words.valid):
                got.append((list(ctx.get(dut.words.payload.pixels)), bool(ctx.get(dut.words.payload.last))))
            sent += offer and ctx.get(dut.pixels.ready)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) == len(expected)
    for i, ((pixels, last), (want, want_last)) in enumerate(zip(got, expected)):
        assert pixels[:len(want)] == want and last == want_last, f"word {i}: {pixels}, {last}; expected {want}"
