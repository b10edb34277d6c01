"""The registry of projection ops (gen.ops) and layer engines (gen.engines): one error for
what is not registered, checked emit factories, every op's projection against a direct
formulation, and no op type tests outside gen/ops/ (docs/architecture.md)."""
import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from gen.boards import get_board
from gen.backend.emit import build_engine
from gen.engines import engine_named, engine_spec, supported_engines
from gen.engines.base import check_arguments
from gen.engines.spiking import SpikingEngine
from gen.errors import FactoryError, ModelError, PlanError
from gen.ir.golden import fanout, project
from gen.ir import INPUT, Conv2d, Dense, Identity, Layer, Network, Projection
from gen.ops import op_from_json, op_spec, supported_ops
from gen.plan import make_plan

REPO = Path(__file__).resolve().parents[1]
BOARD = get_board("pynq-z2")
OP_NAMES = ("Conv2d", "Dense", "Identity")


@dataclass(frozen=True)
class MaxPool:
    """An op nobody registered."""
    kernel: int = 2


def lif(name, shape, projections, **extra):
    channels = shape[0]
    return Layer(name, extra.pop("kind", "spiking"), shape, tuple(projections), np.zeros(channels, np.int64),
                 neuron="ternary", theta_pos=np.full(channels, 4), theta_neg=np.full(channels, -4), **extra)


def readout(source, features, classes=3):
    return Layer("out", "readout", (classes,), (Projection(source, Dense(), np.ones((classes, features), np.int64)),),
                 np.zeros(classes, np.int64))


def chain(middle_op, middle_weight, middle_shape):
    """input (1, 4, 4) -> conv (2, 4, 4) -> `middle` -> readout."""
    enc = lif("enc", (2, 4, 4), [Projection(INPUT, Conv2d(3, 1, 1), np.ones((2, 1, 3, 3), np.int64))],
              kind="encoding")
    mid = lif("mid", middle_shape, [Projection("enc", middle_op, middle_weight)])
    return Network("chain", (1, 4, 4), 2, 8, (enc, mid, readout("mid", int(np.prod(middle_shape)))))


# --------------------------------------------------------------------------- one error, naming what is supported


def test_an_unregistered_op_is_one_model_error_listing_the_ops():
    with pytest.raises(ModelError) as info:
        Projection("enc", MaxPool(), np.ones((2,), np.int64))
    message = str(info.value)
    assert "projection from 'enc'" in message and "MaxPool" in message
    assert all(name in message for name in supported_ops()) and "\n" not in message
    with pytest.raises(ModelError, match="supported ops"):
        project(MaxPool(), np.ones(1, np.int64), np.ones((1, 1), np.int64))
    with pytest.raises(ValueError, match=r"op type must be one of \['conv2d', 'dense', 'identity'\]"):
        op_from_json({"type": "maxpool"})


def test_an_op_no_engine_takes_is_one_plan_error_naming_the_layer(monkeypatch):
    net = chain(Identity(), np.ones(2, np.int64), (2, 4, 4))
    assert supported_ops(hardware=True) == ("conv2d", "dense", "identity")
    make_plan(net, BOARD)                      # the spiking engine takes an identity projection
    monkeypatch.setattr(type(op_spec(Identity())), "hardware", False)    # as if no engine did
    with pytest.raises(PlanError) as info:
        make_plan(net, BOARD)
    assert str(info.value) == "layer 'mid': op identity is not supported by the hardware; supported: conv2d, dense"


def test_an_op_one_engine_does_not_take_is_one_plan_error_naming_the_layer():
    mid = lif("mid", (4,), [Projection(INPUT, Dense(), np.ones((4, 2 * 4 * 4), np.int64))], kind="encoding")
    out = Layer("out", "readout", (4,), (Projection("mid", Identity(), np.ones(4, np.int64)),), np.zeros(4, np.int64))
    net = Network("n", (2, 4, 4), 2, 8, (mid, out))
    with pytest.raises(PlanError, match="^layer 'out': the ReadoutLayer engine does not take op identity; "
                                        "it takes conv2d, dense$"):
        make_plan(net, BOARD)


def test_an_unregistered_engine_is_one_plan_error_naming_the_layer():
    net = chain(Conv2d(3, 1, 1), np.ones((2, 2, 3, 3), np.int64), (2, 4, 4))
    with pytest.raises(PlanError) as info:
        make_plan(net, BOARD, families={"mid": "dense-stream"})
    message = str(info.value)
    assert message.startswith("layer 'mid': no engine for a spiking layer of family 'dense-stream'")
    assert message.endswith("supported: " + ", ".join(supported_engines()))
    with pytest.raises(PlanError, match="engine families name layers that do not exist: \\['nope'\\]"):
        make_plan(net, BOARD, families={"nope": "event"})
    with pytest.raises(PlanError, match="no engine named 'Pool'"):
        engine_named("Pool")


def test_every_layer_kind_has_a_default_engine_and_the_plan_names_it():
    net = chain(Conv2d(3, 1, 1), np.ones((2, 2, 3, 3), np.int64), (2, 4, 4))
    plan = make_plan(net, BOARD)
    assert all(engine_spec(layer.kind).family == "event" for layer in net.layers)   # each kind's default
    # the planner may choose another family per layer (gen.plan.auto_choice); the plan names it
    assert [lp.engine for lp in plan.layers] == [engine_spec(layer.kind, lp.family).name
                                                 for layer, lp in zip(net.layers, plan.layers)]
    assert [lp.geometry.op for lp in plan.layers] == ["conv2d", "conv2d", "dense"]


# --------------------------------------------------------------------------- checked emit factory


class Component:
    def __init__(self, geometry, weights, *, lanes: int, queue_depth: int = 512):
        pass


def test_check_arguments_refuses_unknown_and_missing_arguments():
    check_arguments(Component, {"geometry": 1, "weights": 2, "lanes": 1}, "Test")     # a default may be left out
    with pytest.raises(FactoryError, match=r"unknown arguments \['bogus'\], missing arguments \[\]"):
        check_arguments(Component, {"geometry": 1, "weights": 2, "lanes": 1, "bogus": 0}, "Test")
    with pytest.raises(FactoryError, match=r"unknown arguments \[\], missing arguments \['lanes'\]"):
        check_arguments(Component, {"geometry": 1, "weights": 2}, "Test")


class DroppingEngine(SpikingEngine):
    """A factory that forgot one argument and invented another."""

    def arguments(self, layer, lp, wbits, timesteps, input_queue_depth):
        args = super().arguments(layer, lp, wbits, timesteps, input_queue_depth)
        del args["membrane_width"]
        return dict(args, membrane_bits=lp.widths["membrane_bits"])


def test_the_real_engines_build_and_a_wrong_factory_is_an_error():
    net = chain(Conv2d(3, 1, 1), np.ones((2, 2, 3, 3), np.int64), (2, 4, 4))
    plan = make_plan(net, BOARD)
    for i, lp in enumerate(plan.layers):
        component = build_engine(net, lp, plan.layers[i - 1].queue_depth if i else 0)
        assert type(component) is engine_named(lp.engine).component
    lp = plan.layers[1]
    with pytest.raises(FactoryError, match=r"unknown arguments \['membrane_bits'\], "
                                           r"missing arguments \['membrane_width'\]"):
        DroppingEngine().build(net.layer("mid"), lp, net.wbits, net.timesteps, plan.layers[0].queue_depth)


# --------------------------------------------------------------------------- every op against a direct formulation


def direct_conv2d(op, weight, x):
    n, c, h, w = x.shape
    k, s, pad = op.kernel, op.stride, op.padding
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), np.int64)
    if op.pad_value:
        xp[:] = np.asarray(op.pad_value).reshape(1, c, 1, 1)
    xp[:, :, pad:pad + h, pad:pad + w] = x
    ho, wo = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    out = np.zeros((n, weight.shape[0], ho, wo), np.int64)
    for y, x_ in itertools.product(range(ho), range(wo)):
        window = xp[:, :, y * s:y * s + k, x_ * s:x_ * s + k]
        out[:, :, y, x_] = np.einsum("nckl,ockl->no", window, weight)
    return out


def direct_dense(op, weight, x):
    flat = x.reshape(x.shape[0], -1).astype(object)       # Python ints: no dtype tricks
    return np.array(flat @ weight.T.astype(object), dtype=np.int64)


def direct_identity(op, weight, x):
    out = np.zeros(x.shape, np.int64)
    for c in range(x.shape[1]):
        out[:, c] = x[:, c] * int(weight[c])
    return out


def random_conv2d(rng, pixels):
    c, h, w = int(rng.integers(1, 4)), int(rng.integers(3, 8)), int(rng.integers(3, 8))
    k = int(rng.integers(1, 4))
    padding = int(rng.integers(0, k))
    pad_value = tuple(int(v) for v in rng.integers(0, 256, c)) if pixels and padding and rng.random() < 0.5 else ()
    op = Conv2d(k, int(rng.integers(1, 3)), padding, pad_value)
    return op, (c, h, w), op.weight_shape(int(rng.integers(1, 5)), (c, h, w))


def random_dense(rng, pixels):
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    return Dense(), shape, Dense().weight_shape(int(rng.integers(1, 6)), shape)


def random_identity(rng, pixels):
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    return Identity(), shape, Identity().weight_shape(shape[0], shape)


DIRECT = {"conv2d": (random_conv2d, direct_conv2d), "dense": (random_dense, direct_dense),
          "identity": (random_identity, direct_identity)}


@pytest.mark.parametrize("name", supported_ops())
def test_every_registered_op_projects_like_its_direct_formulation(name):
    assert name in DIRECT, f"op {name!r} is registered: give it a direct formulation in DIRECT"
    make, direct = DIRECT[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    for trial in range(20):
        pixels = trial % 2 == 0
        op, shape, wshape = make(rng, pixels)
        weight = rng.integers(-127, 128, wshape, dtype=np.int64)
        x = (rng.integers(0, 256, (3,) + shape, dtype=np.int64) if pixels
             else rng.integers(-1, 2, (3,) + shape, dtype=np.int64))
        got = project(op, weight, x)
        assert got.dtype == np.int64 and np.array_equal(got, direct(op, weight, x)), (op, shape)
        # Fan-out: the outputs a lone source neuron reaches through all-ones weights.
        op0 = op if not getattr(op, "pad_value", ()) else Conv2d(op.kernel, op.stride, op.padding)
        ones = np.ones(wshape, np.int64)
        out_shape = got.shape[1:]
        fan = fanout(op0, ones, shape, out_shape)
        for flat in rng.choice(int(np.prod(shape)), size=min(5, int(np.prod(shape))), replace=False):
            one_hot = np.zeros(int(np.prod(shape)), np.int64)
            one_hot[flat] = 1
            reached = direct(op0, ones, one_hot.reshape((1,) + shape))
            assert fan.reshape(-1)[flat] == int(reached.sum()), (op0, shape, flat)


# --------------------------------------------------------------------------- nothing outside gen/ops tests an op type


def _op_type_names(node) -> set:
    names = node.elts if isinstance(node, ast.Tuple) else [node]
    found = set()
    for n in names:
        if isinstance(n, ast.Name) and n.id in OP_NAMES:
            found.add(n.id)
        elif isinstance(n, ast.Attribute) and n.attr in OP_NAMES and isinstance(n.value, ast.Name) \
                and n.value.id in ("ir", "ops", "gen"):
            found.add(n.attr)
    return found


def isinstance_sites(root: Path):
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(REPO)
        if rel.parts[:2] == ("gen", "ops"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance" \
                    and len(node.args) == 2 and _op_type_names(node.args[1]):
                yield f"{rel}:{node.lineno}"


def test_no_op_type_test_outside_the_op_registry():
    sites = [s for package in ("gen", "hw", "sim", "host", "benchmarks", "snn")
             for s in isinstance_sites(REPO / package)]
    assert not sites, f"ask gen.ops.op_spec(op) instead of testing an op's type: {sites}"


def test_the_site_check_finds_a_site():
    tree = ast.parse("isinstance(p.op, (Conv2d, Dense))\nisinstance(op, ir.Identity)\nisinstance(n, nir.Conv2d)")
    found = [_op_type_names(node.args[1]) for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance"]
    assert found == [{"Conv2d", "Dense"}, {"Identity"}, set()]


def test_the_registries_import_no_later_stage():
    """gen.ops and gen.engines are read by the stages; they import none of them."""
    later = {"plan", "emit", "build", "golden", "bounds", "cli", "manifest", "synth", "deploy"}
    for package in ("ops", "engines"):
        for path in (REPO / "gen" / package).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module in later:
                    pytest.fail(f"{path.relative_to(REPO)} imports gen.{node.module}")
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                    assert not any(m.startswith(("sim", "host")) for m in modules), path
