"""Residual blocks with identity and projection shortcuts through the whole front end.

A projection shortcut (1×1 conv2d, stride s, + optional BN) runs in snn's PyTorch model, is
saved and loaded by the checkpoint format, folds (BN and the source's amplitude into its
weights, SPEC §2) into one Conv2d projection of the block's layer from the block's input
spikes, and the golden model equals the float64 fake-quantised model spike for spike.
"""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gen.frontend import folds
from gen.errors import ModelError
from gen.frontend.floatnet import parse_checkpoint, run_float
from gen.frontend import compile_dict
from gen.ir.golden import run
from gen.ir import Conv2d, Identity
from gen.frontend.quantise import quantise
from gen.ir.random_net import random_checkpoint, random_images
from gen.ir.reference import run_reference
from snn.checkpoint import load_checkpoint, save_checkpoint
from snn.model import build_model

# (seed, random_checkpoint options): several blocks, identity and projection shortcuts, ternary,
# binary and mixed neurons, with and without pooling and input normalisation.
CASES = [
    (1, dict(blocks=2, neuron="ternary")),
    (5, dict(blocks=2, projection=True, neuron="binary")),
    (3, dict(blocks=3, projection=True, neuron="ternary", pool=True)),
    (10, dict(blocks=2, neuron=None, normalization=True)),
    (11, dict(blocks=3, neuron="binary", pool=False)),
    (7, dict(blocks=1, projection=True, neuron=None, timesteps=3)),
]


def case_checkpoint(seed, options):
    return random_checkpoint(seed, residual=True, **options)


def shortcut_kinds(ckpt):
    return ["projection" if layer["shortcut"] else "identity"
            for layer in ckpt["arch"]["layers"] if layer["type"] == "residual"]


def test_the_cases_cover_identity_and_projection_shortcuts_and_both_neurons():
    kinds = [kind for seed, options in CASES for kind in shortcut_kinds(case_checkpoint(seed, options))]
    assert kinds.count("identity") >= 3 and kinds.count("projection") >= 5
    strides = {layer["shortcut"][0]["stride"] for seed, options in CASES
               for layer in case_checkpoint(seed, options)["arch"]["layers"]
               if layer["type"] == "residual" and layer["shortcut"]}
    assert strides == {1, 2}
    neurons = {layer["neuron"] for seed, options in CASES
               for layer in case_checkpoint(seed, options)["arch"]["layers"] if layer["type"] == "lif"}
    assert neurons == {"ternary", "binary"}


@pytest.mark.parametrize("seed, options", CASES)
def test_snn_model_folds_and_golden_agree_spike_for_spike(seed, options):
    ckpt = case_checkpoint(seed, options)
    images = random_images(seed, ckpt["arch"]["input_shape"], 16)
    # PyTorch (snn) == gen's float semantics of the parsed checkpoint.
    model = build_model(ckpt["arch"])
    model.load_state_dict(ckpt["state_dict"], strict=False)
    model.eval().double()
    with torch.no_grad():
        logits, spikes = model.run(torch.tensor(images), record=True)
    net = parse_checkpoint(ckpt)
    base = run_float(net, images)
    for name, s in spikes.items():
        assert np.array_equal(s.numpy().swapaxes(0, 1).astype(np.int8), base.spikes[name]), name
    np.testing.assert_allclose(base.logits, logits.numpy(), rtol=0, atol=1e-12)
    assert any(np.abs(s).mean() > 0.05 for s in base.spikes.values())
    # Each fold leaves every spike unchanged; the layered network equals the float model.
    for fold in folds.FOLDS:
        net = fold(net)
        after = run_float(net, images)
        for name in base.spikes:
            assert np.array_equal(base.spikes[name], after.spikes[name]), (fold.__name__, name)
        np.testing.assert_allclose(after.logits, base.logits, rtol=0, atol=1e-12, err_msg=fold.__name__)
    layered = folds.to_layers(net)
    ref = run_reference(layered, images)
    for layer in layered.layers[:-1]:
        assert np.array_equal(ref.spikes[layer.name], base.spikes[layer.lif_name]), layer.name
    np.testing.assert_allclose(ref.logits, base.logits, rtol=0, atol=1e-12)
    # Integer golden model == float64 fake-quantised model, every layer and step.
    network = compile_dict(ckpt).network
    golden, fake = run(network, images, record=True), run_reference(network, images)
    for layer in network.layers[:-1]:
        assert np.array_equal(golden.spikes[layer.name], fake.spikes[layer.name]), layer.name
    assert np.array_equal(golden.logits, fake.logit_sums * 2.0 ** int(network.readout.scale_exp[0]))


@pytest.mark.parametrize("seed, options", [c for c in CASES if "projection" in shortcut_kinds(case_checkpoint(*c))])
def test_a_projection_shortcut_becomes_a_1x1_conv_from_the_block_input(seed, options):
    """The block's layer has two projections: the body's last conv and the 1×1 shortcut conv,
    whose source is the layer whose spikes enter the block."""
    ckpt = case_checkpoint(seed, options)
    network = compile_dict(ckpt).network
    by_lif = {layer.lif_name: layer for layer in folds.to_layers(folds.fold_all(parse_checkpoint(ckpt))).layers}
    top = ckpt["arch"]["layers"]
    for i, block in enumerate(top):
        if block["type"] != "residual":
            continue
        layer = network.layer(by_lif[top[i + 1]["name"]].name)
        source = by_lif[top[i - 1]["name"]].name     # the lif before the block fires this layer's spikes
        body, shortcut = layer.projections
        assert shortcut.source == source
        if block["shortcut"]:
            conv = block["shortcut"][0]
            assert shortcut.op == Conv2d(kernel=1, stride=conv["stride"], padding=0)
            assert shortcut.weight.shape == (conv["out_channels"], conv["in_channels"], 1, 1)
        else:
            assert isinstance(shortcut.op, Identity)


def test_shortcut_bn_and_amplitude_fold_into_the_1x1_weights_exactly():
    """W' = a·W·g, b' = (b − μ)·g + β with g = γ/√(σ²+ε) per output channel (SPEC §2.1, §2.2);
    b' adds to the body's bias in the block's layer."""
    ckpt = random_checkpoint(7, residual=True, blocks=1, projection=True, neuron="ternary", pool=False)
    layers = ckpt["arch"]["layers"]
    i = next(i for i, layer in enumerate(layers) if layer["type"] == "residual")
    block, lif_before = layers[i], layers[i - 1]
    conv, bn = block["shortcut"]
    body_conv = block["body"][-1]
    # The seed is fixed: a biased, BN-ed, stride-2 shortcut after a lif with an amplitude.
    assert conv["bias"] and conv["stride"] == 2 and lif_before["amplitude"] and body_conv["type"] == "conv2d"
    state = {k: v.double().numpy() for k, v in ckpt["state_dict"].items()}
    a = float(state[f"{lif_before['name']}.amplitude"])
    g = state[f"{bn['name']}.weight"] / np.sqrt(state[f"{bn['name']}.running_var"] + bn["eps"])
    weight = a * state[f"{conv['name']}.weight"] * g[:, None, None, None]
    bias = (state[f"{conv['name']}.bias"] - state[f"{bn['name']}.running_mean"]) * g + state[f"{bn['name']}.bias"]
    body_bias = state.get(f"{body_conv['name']}.bias", np.zeros_like(bias))
    layered = folds.to_layers(folds.fold_all(parse_checkpoint(ckpt)))
    layer = next(layer for layer in layered.layers if layer.lif_name == layers[i + 1]["name"])
    assert layer.name == body_conv["name"] and len(layer.projections) == 2
    np.testing.assert_allclose(layer.projections[1].weight, weight, rtol=1e-12, atol=0)
    np.testing.assert_allclose(layer.bias, body_bias + bias, rtol=1e-12, atol=1e-15)


def test_checkpoint_round_trip_keeps_the_projection_shortcut(tmp_path):
    ckpt = random_checkpoint(5, residual=True, blocks=2, projection=True, neuron="binary")
    model = build_model(ckpt["arch"])
    model.load_state_dict(ckpt["state_dict"], strict=False)
    model.eval()
    path = save_checkpoint(model, tmp_path / "res.pt", {"neuron": "binary"})
    loaded, saved = load_checkpoint(path)
    blocks = [layer for layer in saved["arch"]["layers"] if layer["type"] == "residual"]
    assert all(len(block["shortcut"]) >= 1 for block in blocks)
    shortcut_keys = {f"{layer['name']}.weight" for block in blocks for layer in block["shortcut"]}
    assert shortcut_keys <= set(saved["state_dict"])
    images = torch.from_numpy(random_images(5, ckpt["arch"]["input_shape"], 8))
    torch.testing.assert_close(loaded(images), model(images), rtol=0, atol=0)


def test_checkpoint_without_the_shortcut_field_is_an_identity_block(tmp_path):
    """Checkpoints written before projection shortcuts existed have no 'shortcut' field."""
    ckpt = random_checkpoint(1, residual=True, blocks=1, projection=False)
    for layer in ckpt["arch"]["layers"]:
        layer.pop("shortcut", None)
    network = compile_dict(ckpt).network
    assert any(isinstance(p.op, Identity) for layer in network.layers for p in layer.projections)
    path = tmp_path / "old.pt"
    torch.save(ckpt, path)
    _, saved = load_checkpoint(path)
    assert [layer["shortcut"] for layer in saved["arch"]["layers"] if layer["type"] == "residual"] == [[]]


@pytest.mark.parametrize("edit, message", [
    (lambda sc: sc[0].update(kernel_size=3, padding=1), "a shortcut conv2d must have kernel_size 1 and padding 0"),
    (lambda sc: sc.reverse(), r"shortcut must be \[\] \(identity\), \[conv2d\] or \[conv2d, batchnorm2d\], "
                              r"not \['batchnorm2d', 'conv2d'\]"),
    (lambda sc: sc[0].update(stride=1), r"the body's output shape .* must equal the projection shortcut's"),
])
def test_gen_refuses_bad_shortcuts_in_a_dict_naming_the_layer(edit, message):
    """gen parses in-memory dicts too (no snn validation): the same rules, a message naming the layer."""
    ckpt = random_checkpoint(7, residual=True, blocks=1, projection=True, neuron="ternary", pool=False)
    block = next(layer for layer in ckpt["arch"]["layers"] if layer["type"] == "residual")
    conv = block["shortcut"][0]
    assert len(block["shortcut"]) == 2 and conv["stride"] == 2   # the seed is fixed
    if "kernel_size 1" in message:
        ckpt["state_dict"][f"{conv['name']}.weight"] = torch.zeros(conv["out_channels"], conv["in_channels"], 3, 3)
    edit(block["shortcut"])
    with pytest.raises(ModelError, match=rf"^layer '({block['name']}|{conv['name']})': .*{message}"):
        compile_dict(ckpt)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1), blocks=st.integers(1, 3), neuron=st.sampled_from(["ternary", "binary", None]))
def test_random_projection_blocks_are_exact(seed, blocks, neuron):
    """One block with a projection shortcut, or an identity block and 1–2 more that draw theirs:
    the layered float network == the checkpoint's float semantics, golden == fake-quantised."""
    ckpt = random_checkpoint(seed, residual=True, blocks=blocks, projection=True if blocks == 1 else None,
                             neuron=neuron)
    float_net = parse_checkpoint(ckpt)
    layered = folds.to_layers(folds.fold_all(float_net))
    images = random_images(seed, float_net.input_shape, 8)
    base, ref = run_float(float_net, images), run_reference(layered, images)
    for layer in layered.layers[:-1]:
        assert np.array_equal(ref.spikes[layer.name], base.spikes[layer.lif_name]), layer.name
    np.testing.assert_allclose(ref.logits, base.logits, rtol=0, atol=1e-12)
    try:
        network = quantise(layered)
    except ModelError as exc:          # a threshold that 8-bit weights cannot keep (tests/test_gen_folds.py)
        assume("θ" not in str(exc))
        raise
    golden, fake = run(network, images, record=True), run_reference(network, images)
    for layer in network.layers[:-1]:
        assert np.array_equal(golden.spikes[layer.name], fake.spikes[layer.name]), layer.name
    assert np.array_equal(golden.logits, fake.logit_sums * 2.0 ** int(network.readout.scale_exp[0]))
