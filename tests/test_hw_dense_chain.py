"""A network built entirely from the dense family through the registry (plan families, checked
factories, stream names as data), its engines chained map stream to map stream: bit-exact
logits and classes against gen.ir.golden under random idle input and back-pressure."""
import pytest

from sim.tb.harness import run_component
from sim.toolchain import available_simulators


def test_dense_engines_chain_bit_exact_with_golden():
    if "verilator" not in available_simulators():
        pytest.skip("verilator is not installed")
    from sim.tb.dense_chain import build
    config = {"net_seed": 3, "steps": 2, "lanes": {"enc": 2, "mid": 3, "out": 1}}
    params = dict(config, images=6, idle=0.3, backpressure=0.3)
    result = run_component(build(config)[1], "dense_chain", "sim.tb.dense_chain", params, config,
                           "verilator", testcase="dense_chain_matches_golden")
    assert result.passed == ("dense_chain_matches_golden",)
