"""Converters between event streams and dense map streams (hw.dense_convert): both round
trips under random idle input and back-pressure; parameter checks."""
import pytest
from amaranth.back import verilog

from hw.dense_convert import EventsToMap, MapToEvents
from sim.tb.harness import run_component
from sim.toolchain import available_simulators


def run_round_trip(direction, channels, height, width, steps, binary=False, seed=None):
    if "verilator" not in available_simulators():
        pytest.skip("verilator is not installed")
    from sim.tb.dense_convert import build
    config = {"direction": direction, "channels": channels, "height": height, "width": width, "steps": steps}
    params = dict(config, images=3, binary=binary, idle=0.3, backpressure=0.4)
    testcase = "events_round_trip" if direction == "events" else "maps_round_trip"
    return run_component(build(config), f"dense_{direction}_round_trip", "sim.tb.dense_convert", params,
                         config, "verilator", seed, testcase=testcase)


@pytest.mark.parametrize("channels,height,width", [(3, 4, 5), (37, 2, 3)])
def test_events_to_map_to_events(channels, height, width):
    """37 channels: the lowest-set-bit tree over halves of unequal size, past the 32 at which
    a Switch-based priority encoder made yosys run out of memory."""
    assert run_round_trip("events", channels, height, width, 2).passed == ("events_round_trip",)


def test_wide_map_to_events_converts_to_verilog():
    """A 64-channel converter (a dense layer feeding an event layer in the residual example)
    goes through amaranth's Verilog conversion (yosys proc) without running out of memory."""
    text = verilog.convert(MapToEvents(64, 14, 14), name="m2e")
    assert "module m2e" in text


@pytest.mark.slow
def test_map_to_events_to_map():
    assert run_round_trip("maps", 5, 3, 3, 3, binary=True).passed == ("maps_round_trip",)


@pytest.mark.parametrize("make,message", [
    (lambda: EventsToMap(0, 2, 2, steps=1), "channels must be an integer >= 1, not 0"),
    (lambda: EventsToMap(2, 2, 2, steps=0), "steps must be an integer >= 1, not 0"),
    (lambda: MapToEvents(2, 0, 2), "height must be an integer >= 1, not 0"),
])
def test_converters_reject_bad_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()
