"""The testbench's spike probes read a dense engine's map stream (hw/ternary_stream.py) back
as the (step, address, neg) spikes that sim/diagnose.py compares with the golden model; no
simulator: the beats are the stream's own encoding of random ternary maps."""
import numpy as np
import pytest

from hw.ternary_stream import map_beats
from sim.diagnose import spike_map
from sim.tb.network import EventTap, MapTap, spike_tap


def read_back(maps: np.ndarray) -> tuple[np.ndarray, int]:
    """Every beat of one image through a MapTap, as diagnose's [T, neurons] spike map."""
    steps = maps.shape[0]
    tap = MapTap({"shape": list(maps.shape[1:])})
    events, step = [], 0
    for word in map_beats(maps):
        spikes, end_of_step = tap.spikes(word)
        events += [(step, addr, neg) for addr, neg in spikes]
        step += end_of_step
    spikes, _, notes = spike_map(np.array(events).reshape(-1, 3), steps, int(np.prod(maps.shape[1:])))
    assert notes == []
    return spikes, step


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 7, 7), (3, 16, 2, 2), (2, 10)])
def test_map_beats_read_back_as_the_golden_spike_layout(shape):
    # The golden model's spikes of a layer are [T, C·H·W] in flat [C,H,W] order (SPEC §5).
    rng = np.random.default_rng(sum(shape))
    maps = rng.integers(-1, 2, size=shape)
    spikes, steps = read_back(maps)
    assert steps == shape[0]
    assert np.array_equal(spikes, maps.reshape(shape[0], -1))


def test_a_map_without_spikes_reads_back_empty_but_counts_its_steps():
    spikes, steps = read_back(np.zeros((3, 4, 2, 2), int))
    assert steps == 3 and not spikes.any()


def test_each_layer_gets_the_tap_of_its_output_stream():
    assert isinstance(spike_tap({"sends_events": True, "event_addr_bits": 10}), EventTap)
    assert isinstance(spike_tap({"sends_events": False, "output_format": "map", "shape": [4, 3, 3]}), MapTap)
    assert spike_tap({"sends_events": False, "output_format": "result", "shape": [10]}) is None
