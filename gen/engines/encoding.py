"""The encoding engine (hw.encoding.EncodingLayer): pixels in, spike events out.

It multiplies each pixel by its weights (one DSP per lane), once per image (direct
encoding: the current is the same at every step), then sweeps the LIF neurons T times.
"""
from __future__ import annotations

from hw.encoding import EncodingLayer

from gen.engines.base import EngineContext, LifSweepEngine, lif_arguments, main_projection_arguments
from gen.engines.spiking import LIF_NEURONS, neuron_arguments


class EncodingEngine(LifSweepEngine):
    kind = "encoding"
    component = EncodingLayer
    reads_events = False            # pixels, straight from the top's AXI-Stream input
    owns_input_queue = False
    ops = ("conv2d", "dense")         # its hw component's geometries
    neurons = LIF_NEURONS
    input_stream = "pixels"
    output_stream = "events"
    # Fitted to yosys synth_xilinx of the example's engines at P = 1 … 64
    # (benchmarks/plan_calibration.md) and rounded up, so that it stays above synthesis.

    def multiplier_dsps(self, ctx: EngineContext) -> int:
        return ctx.lanes             # pixel × weight, one per lane

    def arguments(self, layer, lp, wbits: int, timesteps: int, input_queue_depth: int) -> dict:
        return dict(main_projection_arguments(layer, lp, wbits, timesteps), **lif_arguments(layer, lp),
                    **neuron_arguments(layer))


SPEC = EncodingEngine()
