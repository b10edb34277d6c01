"""Random residual networks built and simulated whole, bit-exact against the golden model.

Each network comes from gen.ir.random_net.random_checkpoint(residual=True): a stem, several
residual blocks with identity and projection shortcuts (1×1 conv, stride 1 or 2; a block whose
body is one conv reads its input twice, main conv and shortcut), binary and ternary neurons.
It goes through the generator's own steps from the IR on (plan, emit, board project, manifest:
the engines joined along the IR's edges, forks where a layer feeds several), then through
`sim.network.simulate_build` like any build folder, on Icarus (tiny networks: fast to compile).

The deadlock argument (docs/hardware.md, "Why the fork and join cannot deadlock, with any
queue depth") is tested where it bites: every queue at the smallest depth the planner can
pick, random idle input and random back-pressure on the result; a deadlock is a timeout.
"""
from pathlib import Path

import numpy as np
import pytest

from gen.flow.build import build_from_ir
from gen.frontend import compile_dict
from gen.plan import SMALLEST_QUEUE_DEPTH
from gen.ir.random_net import random_checkpoint
from sim.network import load_build, simulate_build
from sim.toolchain import have_icarus

IMAGES = 3
SIMULATOR = "icarus" if have_icarus() else "verilator"
# (seed, blocks, projection shortcuts, neuron): seed 21 draws identity, 1×1 stride-1 and stride-2
# shortcuts and a block whose body is one conv (main conv and shortcut read one source); 1 has two
# projection blocks; 11 is binary with a stride-2 projection.
NETWORKS = [(21, None, None, "ternary"), (1, 2, True, "ternary"), (11, None, None, "binary")]
SMALLEST_QUEUES_NETWORK = (16, None, None, "binary")


def build_ir(net, out: Path, queue_depths=None) -> Path:
    """A build folder for an IR (the generator's steps from `ir` on, without lint and synthesis)."""
    build_from_ir(net, "pynq-z2", out, images=8, synthesise=False, lint=False, queue_depths=queue_depths)
    return out


def network(seed: int, blocks, projection, neuron):
    ckpt = random_checkpoint(seed, residual=True, blocks=blocks, projection=projection, neuron=neuron, pool=False,
                             normalization=False)
    return compile_dict(ckpt, name=f"residual{seed}").network


def shortcuts(net) -> set[str]:
    """What the residual layers read besides their main input: 'identity', 'conv1x1/s<stride>'."""
    kinds = set()
    for layer in net.layers:
        for p in layer.projections[1:]:
            kinds.add("identity" if type(p.op).__name__ == "Identity" else f"conv{p.op.kernel}x{p.op.kernel}/s{p.op.stride}")
    return kinds


def check(result, net):
    assert result.ok, (f"{net.name}: " + "; ".join(map(str, result.mismatches[:3]))
                       + (f"; {result.diagnosis.summary()}" if result.diagnosis else ""))
    assert result.report["results"] == IMAGES


def test_the_residual_networks_cover_what_they_claim():
    nets = [network(*spec) for spec in NETWORKS]
    kinds = set().union(*map(shortcuts, nets))
    assert {"identity", "conv1x1/s2"} <= kinds and any(k.startswith("conv1x1/s1") for k in kinds)
    assert {layer.neuron for net in nets for layer in net.layers[:-1]} == {"ternary", "binary"}
    assert all(sum(len(layer.projections) > 1 for layer in net.layers) >= 2 for net in nets)
    # A layer whose two projections read one source (its input forked into two of its streams).
    assert any(len({p.source for p in layer.projections}) < len(layer.projections)
               for net in nets for layer in net.layers)


@pytest.mark.parametrize("spec", NETWORKS, ids=[f"seed{s[0]}" for s in NETWORKS])
def test_random_residual_network_is_bit_exact(spec, tmp_path):
    net = network(*spec)
    out = build_ir(net, tmp_path / "build")
    manifest = load_build(out).manifest
    forked = {e["from"] for e in manifest["edges"]}
    assert len(manifest["edges"]) > len(net.layers) and forked
    result = simulate_build(out, IMAGES, simulator=SIMULATOR, seed=spec[0], backpressure=spec[0] % 2 == 0,
                            quiet=True)
    check(result, net)
    assert result.report["images_source"].startswith("random images")


def test_smallest_queues_under_backpressure_do_not_deadlock(tmp_path):
    """Every edge's queue at the smallest depth the planner can pick, the fork at its own
    smallest buffer, idle input and result back-pressure: bit-exact, and it finishes."""
    net = network(*SMALLEST_QUEUES_NETWORK)
    assert shortcuts(net) == {"identity", "conv1x1/s1", "conv1x1/s2"}
    out = build_ir(net, tmp_path / "build", queue_depths=SMALLEST_QUEUE_DEPTH)
    manifest = load_build(out).manifest
    assert {e["queue_depth"] for e in manifest["edges"] if e["event_addr_bits"]} == {SMALLEST_QUEUE_DEPTH}
    check(simulate_build(out, IMAGES, simulator=SIMULATOR, seed=5, backpressure=True, quiet=True), net)


def test_plan_refuses_a_queue_depth_the_queue_cannot_have():
    from gen.boards import get_board
    from gen.plan import PlanError, make_plan

    net = network(*NETWORKS[0])
    with pytest.raises(PlanError, match="queue depth must be an integer >= 2 .*, not 1"):
        make_plan(net, get_board("pynq-z2"), queue_depths=1)
