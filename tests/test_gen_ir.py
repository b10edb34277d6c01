"""The integer IR: validation, the file pair, the model ID."""
import json

import numpy as np
import pytest

from gen.ir import irfile
from gen.ir import Conv2d, Dense, Identity, Layer, Network, Projection, replace, same_network
from gen.ir.random_net import random_network


def tiny(wbits=8, **enc_changes):
    enc = Layer("enc", "encoding", (2, 3, 3), (Projection("input", Conv2d(3, 1, 1), np.ones((2, 1, 3, 3), np.int64)),),
                bias=[0, 1], neuron="ternary", theta_pos=[4, 4], theta_neg=[-4, -4], leak_shift=2, scale_exp=[3, 3])
    if enc_changes:
        enc = replace(enc, **enc_changes)
    out = Layer("out", "readout", (3,), (Projection("enc", Dense(), np.arange(54).reshape(3, 18) % 5 - 2),),
                bias=[0, 0, 0], scale_exp=[2, 2, 2])
    return Network("tiny", (1, 3, 3), 2, wbits, (enc, out))


def test_arrays_are_read_only_int64():
    net = tiny()
    w = net.layers[0].projections[0].weight
    assert w.dtype == np.int64
    with pytest.raises(ValueError):
        w[0, 0, 0, 0] = 5


@pytest.mark.parametrize("make, message", [
    (lambda: tiny(kind="hidden"), "kind must be one of"),
    (lambda: tiny(theta_neg=[4, -4]), "theta_neg must be < theta_pos in every channel, not 4 >= 4 in channel 0"),
    (lambda: tiny(bias=[0.5, 1.0]), "bias must be an integer array, not dtype float64"),
    (lambda: tiny(neuron="binary"), "theta_neg must be None for a binary neuron"),
    (lambda: tiny(neuron="leaky"), "neuron must be one of ('ternary', 'binary', 'if_subtract', 'msat'), not 'leaky'"),
    (lambda: tiny(leak_shift=-1), "leak_shift must be between 0 and 16, not -1"),
    (lambda: tiny(wbits=2), "weights must satisfy |W| <= 1 (wbits=2), not 2"),
    (lambda: tiny(projections=(Projection("input", Conv2d(3, 1, 1, pad_value=(7, 7)), np.ones((2, 1, 3, 3), np.int64)),)),
     "pad_value must have one value per input channel (1), not (7, 7)"),
    (lambda: tiny(projections=(Projection("input", Conv2d(3, 1, 0), np.ones((2, 1, 3, 3), np.int64)),)),
     "output shape must equal the layer shape (2, 3, 3), not (2, 1, 1)"),
    (lambda: tiny(projections=(Projection("input", Dense(), np.ones((2, 9), np.int64)),)),
     "output shape must equal the layer shape"),
    (lambda: tiny(projections=(Projection("out", Conv2d(3, 1, 1), np.ones((2, 1, 3, 3), np.int64)),)),
     "source must be 'input' for the encoding layer"),
    (lambda: Conv2d(0), "kernel must be >= 1, not 0"),
    (lambda: Conv2d(3, pad_value=(300,)), "pad_value[0] must be between 0 and 255, not 300"),
    (lambda: Projection("a-b", Dense(), np.zeros((1, 1), np.int64)), "source must be a name matching"),
])
def test_constructors_reject(make, message):
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    assert message in str(info.value)


def test_readout_needs_one_scale_and_no_neuron():
    net = tiny()
    out = net.layers[1]
    with pytest.raises(ValueError, match="scale_exp must be one common value for a readout"):
        replace(out, scale_exp=[1, 2, 2])
    with pytest.raises(ValueError, match="neuron must be None for a readout"):
        replace(out, neuron="ternary")


def test_network_order_and_kinds():
    net = tiny()
    with pytest.raises(ValueError, match="layer kinds must be encoding, spiking..., readout"):
        Network("x", (1, 3, 3), 2, 8, (net.layers[1], net.layers[0]))
    spiking = replace(net.layers[0], name="hidden", kind="spiking")
    with pytest.raises(ValueError, match="only the encoding layer sees the pixels"):
        Network("x", (1, 3, 3), 2, 8, (net.layers[0], spiking, net.layers[1]))
    later = replace(net.layers[1], projections=(Projection("nowhere", Dense(), np.zeros((3, 18), np.int64)),))
    with pytest.raises(ValueError, match="source must name an earlier layer"):
        Network("x", (1, 3, 3), 2, 8, (net.layers[0], later))


def _assert_same(a: Network, b: Network):
    assert (a.name, a.input_shape, a.timesteps, a.wbits) == (b.name, b.input_shape, b.timesteps, b.wbits)
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert (la.name, la.kind, la.shape, la.neuron, la.leak_shift) == (lb.name, lb.kind, lb.shape, lb.neuron, lb.leak_shift)
        for field in ("bias", "theta_pos", "theta_neg", "scale_exp"):
            va, vb = getattr(la, field), getattr(lb, field)
            assert (va is None and vb is None) or (np.array_equal(va, vb) and vb.dtype == np.int64)
        assert len(la.projections) == len(lb.projections)
        for pa, pb in zip(la.projections, lb.projections):
            assert pa.source == pb.source and pa.op == pb.op
            assert np.array_equal(pa.weight, pb.weight) and pa.weight.shape == pb.weight.shape


@pytest.mark.parametrize("seed", range(6))
def test_save_load_round_trip(tmp_path, seed):
    net = random_network(seed, shortcuts=True)
    json_path, npz_path = irfile.save(net, tmp_path / "net")
    assert json_path.name == "net.json" and npz_path.name == "net.npz"
    back = irfile.load(tmp_path / "net")
    _assert_same(net, back)
    assert same_network(net, back) and not same_network(net, random_network(seed + 100))
    assert irfile.model_id(back) == irfile.model_id(net)
    document = json.loads(json_path.read_text())
    assert document["format"] == "tern-ir" and document["version"] == 1
    assert document["model_id"] == irfile.model_id(net)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with np.load(npz_path, allow_pickle=False) as data:
        assert all(data[k].dtype == np.int64 for k in data.files)


def test_round_trip_keeps_pad_values(tmp_path):
    net = tiny(projections=(Projection("input", Conv2d(3, 1, 1, pad_value=(33,)), np.ones((2, 1, 3, 3), np.int64)),))
    irfile.save(net, tmp_path / "p")
    assert irfile.load(tmp_path / "p.json").layers[0].projections[0].op.pad_value == (33,)


def test_model_id_is_stable_and_sensitive():
    net = tiny()
    assert irfile.model_id(net) == irfile.model_id(tiny())
    assert 0 <= irfile.model_id(net) < 2 ** 32
    changed = tiny(bias=[0, 2])
    assert irfile.model_id(changed) != irfile.model_id(net)
    assert irfile.model_id(tiny(leak_shift=1)) != irfile.model_id(net)


def test_load_refuses_inconsistent_or_foreign_files(tmp_path):
    net = tiny()
    json_path, npz_path = irfile.save(net, tmp_path / "a")
    irfile.save(tiny(bias=[5, 5]), tmp_path / "b")
    npz_path.write_bytes((tmp_path / "b.npz").read_bytes())
    with pytest.raises(irfile.IRFileError, match="does not match"):
        irfile.load(tmp_path / "a")
    document = json.loads(json_path.read_text())
    json_path.write_text(json.dumps({**document, "version": 99}))
    with pytest.raises(irfile.IRFileError, match=r"version must be one of \[1, 2\], not 99"):
        irfile.load(tmp_path / "a")
    with pytest.raises(irfile.IRFileError, match="IR file not found"):
        irfile.load(tmp_path / "missing")


def test_model_id_follows_the_documented_recipe(tmp_path):
    """docs/ir.md: SHA-256 over the canonical structure JSON, then key, shape, int64 bytes per array."""
    import hashlib
    net = random_network(3, shortcuts=True)
    json_path, npz_path = irfile.save(net, tmp_path / "n")
    document = json.loads(json_path.read_text())
    structure = {k: v for k, v in document.items() if k not in ("format", "version", "model_id", "npz", "npz_sha256")}
    digest = hashlib.sha256(json.dumps(structure, sort_keys=True, separators=(",", ":")).encode())
    with np.load(npz_path, allow_pickle=False) as data:
        for key in sorted(data.files):
            digest.update(key.encode() + b"\0" + json.dumps(list(data[key].shape), separators=(",", ":")).encode() + b"\0")
            digest.update(data[key].astype("<i8").tobytes())
    assert int.from_bytes(digest.digest()[:4], "big") == document["model_id"] == irfile.model_id(net)
