"""Models built from architecture descriptions (docs/checkpoint.md)."""
import copy

import pytest
import torch

from snn.arch import ArchError, expected_parameters, infer_shapes, normalize_arch
from snn.data import load_mnist
from snn.model import build_model
from snn.zoo import mnist_arch, mnist_resnet_arch


def small_arch(**changes):
    arch = {
        "input_shape": [1, 8, 8], "timesteps": 2, "input_normalization": None,
        "layers": [
            {"name": "conv1", "type": "conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3,
             "stride": 1, "padding": 1, "bias": False},
            {"name": "bn1", "type": "batchnorm2d", "num_features": 4, "eps": 1e-5},
            {"name": "lif1", "type": "lif", "neuron": "ternary", "tau_shift": 2, "v_threshold": 1.0,
             "amplitude": True, "mpbn": False},
            {"name": "flatten", "type": "flatten"},
            {"name": "fc", "type": "linear", "in_features": 256, "out_features": 3, "bias": True},
        ],
    }
    arch.update(changes)
    return arch


def test_unknown_layer_type_is_refused_listing_the_supported_ones():
    arch = small_arch()
    arch["layers"].insert(1, {"name": "drop", "type": "dropout"})
    with pytest.raises(ArchError) as info:
        build_model(arch)
    assert str(info.value) == ("layer 'drop' has unknown type 'dropout'; supported types: conv2d, linear, "
                               "batchnorm2d, batchnorm1d, lif, avgpool2d, flatten, residual, relu, if_subtract, msat")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("edit, message", [
    (lambda a: a["layers"][0].update(in_channels=3),
     "layer 'conv1' field 'in_channels' must be 1 (the input has 1 channels), not 3"),
    (lambda a: a["layers"][4].update(in_features=100),
     "layer 'fc' field 'in_features' must be 256 (the input size), not 100"),
    (lambda a: a["layers"][2].update(neuron="quaternary"),
     "layer 'lif1' field 'neuron' must be one of ['ternary', 'binary'], not 'quaternary'"),
    (lambda a: a["layers"][2].update(tau=0.25),
     "layer 'lif1' (lif) has unknown fields ['tau']; its fields are "
     "['amplitude', 'mpbn', 'mpbn_eps', 'neuron', 'tau_shift', 'v_threshold']"),
    (lambda a: a["layers"][1].update(name="conv1"), "layer name must be unique, not 'conv1' a second time"),
    (lambda a: a["layers"][1].update(name="bn-1"), "layer name must match [A-Za-z0-9_]+, not 'bn-1'"),
    (lambda a: a["layers"].append({"name": "lif9", "type": "lif"}),
     "the last layer must be the readout, a 'linear' (+ optional 'batchnorm1d') with no 'lif' after it, "
     "not 'lif' ('lif9')"),
    (lambda a: a["layers"].pop(2), "layers must contain at least one 'lif' (a network without spikes is not an SNN)"),
    (lambda a: a.update(timesteps=0), "timesteps must be an int between 1 and 128, not 0"),
    (lambda a: a.update(timesteps=10 ** 6), "timesteps must be an int between 1 and 128, not 1000000"),
    (lambda a: a.update(input_shape=[1, 70000, 70000]),
     "input_shape [1, 70000, 70000] is too large: at most 4096 channels and 2048x2048 pixels"),
    (lambda a: a.update(input_shape=[4096, 2048, 2048]),
     "input_shape [4096, 2048, 2048] is too large: 17,179,869,184 values per image, the limit is 4,194,304"),
    (lambda a: a["layers"][0].update(out_channels=10 ** 5),
     "layer 'conv1' field 'out_channels' must be an int between 1 and 4096, not 100000"),
    (lambda a: a["layers"][0].update(padding=10 ** 6),
     "layer 'conv1' field 'padding' must be an int between 0 and 2048, not 1000000"),
    (lambda a: a["layers"][0].update(padding=1000, kernel_size=1),
     "layer 'conv1' outputs 16,128,256 values per image (shape [4, 2008, 2008]); the limit is 4,194,304"),
    (lambda a: a["layers"][4].update(out_features=10 ** 5),
     "layer 'fc' has 25,600,000 weights (fc.weight [100000, 256]); the limit is 16,777,216 per layer"),
    (lambda a: a["layers"][2].update(tau_shift=17),
     "layer 'lif1' field 'tau_shift' must be an int between 0 and 16, not 17"),
    (lambda a: a["layers"].pop(3), "layer 'fc' (linear) needs a flat [F] input (add a 'flatten'), not shape [4, 8, 8]"),
    (lambda a: a["layers"][0].pop("kernel_size"), "layer 'conv1' (conv2d) needs field 'kernel_size'"),
    (lambda a: a.update(input_normalization={"mean": [0.1], "std": [0.0]}),
     "input_normalization['std'] must be > 0 everywhere, not [0.0]"),
])
def test_invalid_archs_are_refused_with_clear_messages(edit, message):
    arch = small_arch()
    edit(arch)
    with pytest.raises(ArchError) as info:
        build_model(arch)
    assert str(info.value) == message


def test_normalize_fills_defaults_and_does_not_touch_the_input():
    arch = small_arch()
    arch["layers"][2] = {"name": "lif1", "type": "lif"}
    before = copy.deepcopy(arch)
    norm = normalize_arch(arch)
    assert arch == before
    assert norm["layers"][2] == {"name": "lif1", "type": "lif", "neuron": "ternary", "tau_shift": 2,
                                 "v_threshold": 1.0, "amplitude": False, "mpbn": False, "mpbn_eps": 1e-5}


def test_state_dict_names_and_shapes_follow_the_arch():
    model = build_model(small_arch())
    state = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert state == expected_parameters(normalize_arch(small_arch()))
    assert state["conv1.weight"] == (4, 1, 3, 3) and state["lif1.amplitude"] == ()


def test_forward_takes_uint8_or_unit_float_and_returns_logits():
    torch.manual_seed(0)
    model = build_model(mnist_arch(width=4)).eval()
    images, _ = load_mnist(split="heldout", limit=4)
    x = torch.from_numpy(images)
    logits = model(x)
    assert logits.shape == (4, 10)
    torch.testing.assert_close(model(x.float() / 255), logits)
    with pytest.raises(ValueError, match=r"images must have shape \[B, 1, 28, 28\], not \[4, 28, 28\]"):
        model(x[:, 0])
    with pytest.raises(TypeError, match="images must be uint8 or floating point, not torch.int64"):
        model(x.long())


def test_logits_are_the_mean_over_time_of_the_readout_of_explicit_steps():
    """The network equals a hand-written loop: analog stem every step, LIF over T, readout mean."""
    torch.manual_seed(1)
    arch = mnist_arch(width=4, timesteps=3)
    model = build_model(arch)
    with torch.no_grad():  # non-trivial BN statistics and amplitudes
        for name in ("bn1", "bn2", "bn3"):
            bn = getattr(model, name)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 2.0)
        for name in ("lif1", "lif2", "lif3"):
            getattr(model, name).amplitude.fill_(0.75)
    model.eval()
    images, _ = load_mnist(split="heldout", limit=3)
    x = torch.from_numpy(images).float() / 255
    T = 3
    with torch.no_grad():
        h = x.unsqueeze(0).repeat(T, 1, 1, 1, 1)
        for i in (1, 2, 3):
            conv, bn, lif = (getattr(model, f"{p}{i}") for p in ("conv", "bn", "lif"))
            h = torch.stack([bn.__class__.__mro__[1].forward(bn, conv.__class__.__mro__[1].forward(conv, h[t]))
                             for t in range(T)])
            h = 0.75 * lif.spikes_stepwise(h)
        expected = torch.stack([model.fc.__class__.__mro__[1].forward(model.fc, h[t].flatten(1))
                                for t in range(T)]).mean(0)
        logits, spikes = model.run(torch.from_numpy(images), record=True)
    torch.testing.assert_close(logits, expected)
    assert set(spikes) == {"lif1", "lif2", "lif3"} and spikes["lif2"].shape == (T, 3, 8, 14, 14)
    assert set(torch.unique(spikes["lif1"]).tolist()) <= {-1.0, 0.0, 1.0}


def test_residual_avgpool_and_mpbn_build_and_run():
    arch = {
        "input_shape": [1, 8, 8], "timesteps": 2, "input_normalization": {"mean": [0.5], "std": [0.25]},
        "layers": [
            {"name": "conv1", "type": "conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1},
            {"name": "lif1", "type": "lif", "mpbn": True},
            {"name": "res1", "type": "residual", "body": [
                {"name": "conv2", "type": "conv2d", "in_channels": 4, "out_channels": 4, "kernel_size": 3,
                 "padding": 1, "bias": False},
                {"name": "bn2", "type": "batchnorm2d", "num_features": 4},
            ]},
            {"name": "lif2", "type": "lif", "neuron": "binary", "amplitude": True},
            {"name": "pool", "type": "avgpool2d", "kernel_size": 2},
            {"name": "flatten", "type": "flatten"},
            {"name": "fc", "type": "linear", "in_features": 64, "out_features": 5},
            {"name": "bnfc", "type": "batchnorm1d", "num_features": 5},
        ],
    }
    model = build_model(arch)
    keys = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    assert keys == set(expected_parameters(normalize_arch(arch)))
    assert {"conv2.weight", "bn2.running_var", "lif1.mpbn.weight", "lif2.amplitude"} <= keys
    assert infer_shapes(arch)["pool"] == (4, 4, 4)
    out = model(torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8))
    assert out.shape == (3, 5)
    out.sum().backward()
    assert model.conv2.weight.grad is not None and model.conv2.weight.grad.abs().sum() > 0


def test_residual_needs_spikes_in_and_a_lif_after():
    arch = small_arch()
    arch["layers"].insert(3, {"name": "res", "type": "residual", "body": [
        {"name": "c", "type": "conv2d", "in_channels": 4, "out_channels": 4, "kernel_size": 1}]})
    with pytest.raises(ArchError, match="layer 'res': a residual block must be followed by a 'lif'"):
        build_model(arch)
    arch["layers"][3]["body"][0]["out_channels"] = 2
    with pytest.raises(ArchError, match=r"layer 'res': the body turns shape \[4, 8, 8\] into \[2, 8, 8\]"):
        build_model(arch)


def test_zoo_arch_is_hardware_friendly():
    arch = mnist_arch()
    kinds = [layer["type"] for layer in arch["layers"]]
    assert kinds == ["conv2d", "batchnorm2d", "lif"] * 3 + ["flatten", "linear"]
    assert [layer["stride"] for layer in arch["layers"] if layer["type"] == "conv2d"] == [1, 2, 2]
    assert arch["input_normalization"] is None
    shapes = infer_shapes(arch)
    neurons = sum(shapes[f"lif{i}"][0] * shapes[f"lif{i}"][1] * shapes[f"lif{i}"][2] for i in (1, 2, 3))
    assert neurons == 32 * 784 + 64 * 196 + 64 * 49
    assert build_model(arch).arch == arch
    with pytest.raises(ValueError, match="width must be an int >= 1, not 0"):
        mnist_arch(width=0)


def test_layer_name_clashing_with_a_module_attribute_is_refused():
    arch = small_arch()
    arch["layers"][1]["name"] = "forward"
    with pytest.raises(ArchError, match="layer name 'forward' clashes with an attribute of the PyTorch module"):
        build_model(arch)


def projection_arch(shortcut=None, body_out=6, body_stride=2):
    """small_arch with a residual block 4 -> body_out channels, stride body_stride, and a shortcut."""
    arch = small_arch()
    side = (8 - 1) // body_stride + 1
    block = {"name": "res", "type": "residual", "body": [
        {"name": "c", "type": "conv2d", "in_channels": 4, "out_channels": body_out, "kernel_size": 3,
         "stride": body_stride, "padding": 1, "bias": False},
        {"name": "bnc", "type": "batchnorm2d", "num_features": body_out}]}
    if shortcut is not None:
        block["shortcut"] = shortcut
    arch["layers"][3:3] = [block, {"name": "lif2", "type": "lif"}]
    arch["layers"][-1]["in_features"] = body_out * side * side
    return arch


def shortcut_conv(**changes):
    return {"name": "sc", "type": "conv2d", "in_channels": 4, "out_channels": 6, "kernel_size": 1, "stride": 2,
            "padding": 0, "bias": False, **changes}


def test_projection_shortcut_is_validated_and_its_parameters_are_expected():
    arch = normalize_arch(projection_arch([shortcut_conv(), {"name": "bnsc", "type": "batchnorm2d", "num_features": 6}]))
    block = arch["layers"][3]
    assert [layer["name"] for layer in block["shortcut"]] == ["sc", "bnsc"]
    assert infer_shapes(arch)["sc"] == (6, 4, 4) and infer_shapes(arch)["res"] == (6, 4, 4)
    params = expected_parameters(arch)
    assert params["sc.weight"] == (6, 4, 1, 1) and params["bnsc.running_var"] == (6,)
    # An identity block normalises to an empty shortcut (and old archs without the field still load).
    identity = normalize_arch(projection_arch(body_out=4, body_stride=1))
    assert identity["layers"][3]["shortcut"] == []


@pytest.mark.parametrize("shortcut, message", [
    ([shortcut_conv(stride=1)], r"layer 'res' field 'shortcut' turns the block input \[4, 8, 8\] into \[6, 8, 8\], "
                                r"but the body gives \[6, 4, 4\]; they must be equal"),
    ([shortcut_conv(out_channels=5)], r"into \[5, 4, 4\], but the body gives \[6, 4, 4\]"),
    ([shortcut_conv(kernel_size=3, padding=1)],
     "layer 'sc': a shortcut conv2d must have kernel_size 1 and padding 0, not kernel_size 3 and padding 1"),
    ([{"name": "bnsc", "type": "batchnorm2d", "num_features": 4}],
     r"layer 'res' field 'shortcut' must be \[conv2d\] or \[conv2d, batchnorm2d\], not \['batchnorm2d'\]"),
    ([shortcut_conv(), {"name": "l", "type": "lif"}],
     r"must be \[conv2d\] or \[conv2d, batchnorm2d\], not \['conv2d', 'lif'\]"),
    ({"name": "sc"}, r"layer 'res' field 'shortcut' must be \[\] \(identity\) or a list"),
    ([shortcut_conv(name="c")], "layer name must be unique, not 'c' a second time"),
    (None, r"layer 'res': the body turns shape \[4, 8, 8\] into \[6, 4, 4\]; an identity shortcut needs them "
           r"equal \(or give a projection 'shortcut'\)"),
])
def test_bad_shortcuts_are_refused_with_clear_messages(shortcut, message):
    with pytest.raises(ArchError, match=message):
        build_model(projection_arch(shortcut))


def test_projection_shortcut_adds_its_current_to_the_body_before_the_lif():
    """The block's output is body(x) + BN(conv1x1(x)); the LIF after it sees the sum."""
    torch.manual_seed(2)
    arch = projection_arch([shortcut_conv(bias=True), {"name": "bnsc", "type": "batchnorm2d", "num_features": 6}])
    model = build_model(arch)
    with torch.no_grad():
        for bn in (model.bnc, model.bnsc):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
    model.eval()
    assert {"sc.weight", "sc.bias", "bnsc.weight"} <= set(model.state_dict())
    x = torch.randn(2, 3, 4, 8, 8)  # [T, B, C, H, W], as the LIF before the block emits
    expected = model.bnc(model.c(x)) + model.bnsc(model.sc(x))
    torch.testing.assert_close(model.res(x), expected)
    images = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    model.train()
    model(images).sum().backward()
    assert model.sc.weight.grad is not None and model.sc.weight.grad.abs().sum() > 0


def test_zoo_resnet_has_an_identity_and_a_projection_block_and_fits_the_budget():
    from snn.zoo import mnist_resnet_arch
    arch = mnist_resnet_arch()
    blocks = [layer for layer in arch["layers"] if layer["type"] == "residual"]
    assert [len(block["shortcut"]) for block in blocks] == [0, 2]
    conv = blocks[1]["shortcut"][0]
    assert (conv["kernel_size"], conv["stride"], conv["padding"]) == (1, 2, 0)
    assert arch["input_normalization"] is None and arch["timesteps"] == 2
    assert not any(layer["type"] == "avgpool2d" for layer in arch["layers"])
    shapes = infer_shapes(arch)
    lifs = [layer["name"] for layer in (*arch["layers"], *blocks[0]["body"], *blocks[1]["body"])
            if layer["type"] == "lif"]
    neurons = sum(torch.Size(shapes[name]).numel() for name in lifs)
    assert neurons == 16 * 784 + 3 * 32 * 196 + 2 * 64 * 49 < 40_768   # fewer than the shipped chain net
    assert shapes["res4"] == (64, 7, 7)
    assert build_model(arch).arch == arch
    with pytest.raises(ValueError, match="neuron must be one of"):
        mnist_resnet_arch(neuron="quaternary")


def _resnet19_cifar_arch():
    """ResNet-19 as in the Ternary Spike paper's CIFAR runs: 128/256/512 channels, 3x3 convs."""
    layers = [{"name": "stem", "type": "conv2d", "in_channels": 3, "out_channels": 128, "kernel_size": 3,
               "padding": 1},
              {"name": "stem_bn", "type": "batchnorm2d", "num_features": 128}, {"name": "stem_lif", "type": "lif"}]
    channels, side = 128, 32
    for stage, width in enumerate((128, 256, 512)):
        for block in range(3 if stage < 2 else 2):
            stride = 2 if block == 0 and stage > 0 else 1
            name = f"s{stage}b{block}"
            body = [{"name": f"{name}_c1", "type": "conv2d", "in_channels": channels, "out_channels": width,
                     "kernel_size": 3, "stride": stride, "padding": 1},
                    {"name": f"{name}_bn1", "type": "batchnorm2d", "num_features": width},
                    {"name": f"{name}_lif1", "type": "lif"},
                    {"name": f"{name}_c2", "type": "conv2d", "in_channels": width, "out_channels": width,
                     "kernel_size": 3, "padding": 1},
                    {"name": f"{name}_bn2", "type": "batchnorm2d", "num_features": width}]
            if stride == 2:  # downsample: a plain conv stage keeps the test independent of shortcut kinds
                layers += body[:3]
                body = body[3:]
            side //= stride
            channels = width
            layers += [{"name": name, "type": "residual", "body": body}, {"name": f"{name}_lif", "type": "lif"}]
    layers += [{"name": "pool", "type": "avgpool2d", "kernel_size": side}, {"name": "flatten", "type": "flatten"},
               {"name": "fc1", "type": "linear", "in_features": 512, "out_features": 256},
               {"name": "fc1_lif", "type": "lif"},
               {"name": "fc", "type": "linear", "in_features": 256, "out_features": 100}]
    return {"input_shape": [3, 32, 32], "timesteps": 64, "input_normalization": None, "layers": layers}


def test_size_limits_admit_cifar_and_imagenet_sized_models():
    normalize_arch(_resnet19_cifar_arch())  # pure Python: nothing is allocated
    imagenet_stem = {"input_shape": [3, 224, 224], "timesteps": 4, "input_normalization": None, "layers": [
        {"name": "conv1", "type": "conv2d", "in_channels": 3, "out_channels": 64, "kernel_size": 7,
         "stride": 2, "padding": 3},
        {"name": "lif1", "type": "lif"}, {"name": "pool", "type": "avgpool2d", "kernel_size": 112},
        {"name": "flatten", "type": "flatten"},
        {"name": "fc", "type": "linear", "in_features": 64, "out_features": 1000}]}
    assert infer_shapes(imagenet_stem)["conv1"] == (64, 112, 112)
    for make in (mnist_arch, mnist_resnet_arch):
        normalize_arch(make(timesteps=64))
