"""Checkpoints: round trip, atomic writes, and refusal of everything that is not one."""
import os
import pickle

import pytest
import torch

from snn.checkpoint import (CheckpointError, checkpoint_dict, load_checkpoint, read_checkpoint,
                            save_checkpoint, validate_checkpoint)
from snn.data import load_mnist
from snn.model import build_model
from snn.zoo import mnist_arch


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = build_model(mnist_arch(width=4))
    net.train()
    images, _ = load_mnist(split="train", limit=64)
    net(torch.from_numpy(images))  # move the BatchNorm statistics away from their defaults
    with torch.no_grad():
        net.lif2.amplitude.fill_(0.8)
    return net.eval()


@pytest.fixture()
def saved(model, tmp_path):
    return save_checkpoint(model, tmp_path / "model.pt", {"neuron": "ternary", "note": "test"})


def test_round_trip_gives_the_same_logits_arch_and_meta(model, saved):
    images, _ = load_mnist(split="heldout", limit=16)
    x = torch.from_numpy(images)
    loaded, ckpt = load_checkpoint(saved)
    assert not loaded.training
    assert torch.equal(loaded(x), model(x))
    assert ckpt["arch"] == model.arch and loaded.arch == model.arch
    assert ckpt["meta"] == {"neuron": "ternary", "note": "test"}
    assert ckpt["format"] == "tern-checkpoint" and ckpt["version"] == 1
    assert not any(k.endswith("num_batches_tracked") for k in ckpt["state_dict"])


def test_file_holds_only_plain_data(saved):
    raw = torch.load(saved, weights_only=True)
    assert set(raw) == {"format", "version", "arch", "state_dict", "meta"}
    assert all(type(v) is torch.Tensor for v in raw["state_dict"].values())


def test_save_is_atomic_and_leaves_no_temporary_files(model, tmp_path):
    target = tmp_path / "m.pt"
    save_checkpoint(model, target, {"a": 1})
    save_checkpoint(model, target, {"a": 2})  # overwrite in place
    assert read_checkpoint(target)["meta"] == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_unserialisable_meta_is_refused_before_anything_is_written(model, tmp_path):
    with pytest.raises(CheckpointError, match="meta must be JSON-serialisable"):
        save_checkpoint(model, tmp_path / "m.pt", {"bad": object()})
    assert list(tmp_path.iterdir()) == []


class _Exploit:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4")
@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": "tern-checkpoint", "version": 1, "exploit": _Exploit(marker)}
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload, protocol=4))
    else:
        torch.save(payload, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert not marker.exists()
    what = "a pickle (not a torch.save archive)" if writer == "pickle" else "a torch.save archive"
    assert str(info.value).startswith(f"{path} is not a Tern checkpoint: it is {what} that needs code to load, "
                                      "which is refused without running it (weights_only)")
    assert str(info.value).endswith("expected a Tern checkpoint written by `python -m snn train`")
    assert "weights_only=False" not in str(info.value) and "weights_only` set to `False" not in str(info.value)
    if writer == "torch.save":  # protocol 2: the unpickler reaches the global and names it
        assert "; it references io.open;" in str(info.value)


def test_a_truncated_file_is_refused(saved, tmp_path):
    data = saved.read_bytes()
    broken = tmp_path / "truncated.pt"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated.pt is truncated or corrupt: not a complete zip archive "
                                              r"\(expected a Tern checkpoint written by `python -m snn train`\)"):
        load_checkpoint(broken)


def test_random_bytes_and_an_empty_file_are_refused(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(1000))
    junk.write_bytes(b"\x13" + os.urandom(1000))
    with pytest.raises(CheckpointError, match=r"junk.pt is not a readable Tern checkpoint \(corrupt, truncated or "
                                              r"not a torch.save file\): it starts with bytes 13"):
        load_checkpoint(junk)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.pt is empty \(expected a Tern checkpoint; an interrupted write\?\)"):
        load_checkpoint(empty)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint not found: .*nope.pt \(expected a Tern checkpoint "
                                              r"written by `python -m snn train`\)"):
        load_checkpoint(tmp_path / "nope.pt")


def test_a_bare_state_dict_is_refused_with_a_hint(model, tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value) == (f"{path} is not a Tern checkpoint: it is a bare PyTorch state_dict; expected a "
                               "dict with format='tern-checkpoint' (save models with snn.checkpoint.save_checkpoint)")


def test_other_pickled_data_is_refused(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match=r"list.pt is not a Tern checkpoint: it holds a list, expected a dict "
                                              r"with keys \['format', 'version', 'arch', 'state_dict', 'meta'\]"):
        load_checkpoint(path)


def test_unknown_version_and_format_are_refused(model):
    ckpt = checkpoint_dict(model, {})
    with pytest.raises(CheckpointError, match=r"checkpoint has checkpoint format version 2; this reader knows "
                                              r"versions \[1\]"):
        validate_checkpoint({**ckpt, "version": 2})
    with pytest.raises(CheckpointError, match="checkpoint is not a Tern checkpoint: format is 'onnx', "
                                              "expected 'tern-checkpoint'"):
        validate_checkpoint({**ckpt, "format": "onnx"})


def test_state_dict_that_does_not_match_the_arch_is_refused(model):
    ckpt = checkpoint_dict(model, {})
    state = dict(ckpt["state_dict"])
    state["conv2.weight"] = torch.zeros(8, 4, 5, 5)
    with pytest.raises(CheckpointError, match=r"state_dict\['conv2.weight'\] has shape \[8, 4, 5, 5\], "
                                              r"the arch needs \[8, 4, 3, 3\]"):
        validate_checkpoint({**ckpt, "state_dict": state})
    state = dict(ckpt["state_dict"])
    del state["fc.bias"]
    state["fc2.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"state_dict does not match the arch: missing \['fc.bias'\], "
                                              r"unexpected \['fc2.weight'\]"):
        validate_checkpoint({**ckpt, "state_dict": state})
    state = dict(ckpt["state_dict"])
    state["fc.bias"] = torch.full((10,), float("nan"))
    with pytest.raises(CheckpointError, match=r"state_dict\['fc.bias'\] holds NaN or infinite values"):
        validate_checkpoint({**ckpt, "state_dict": state})


def test_an_invalid_arch_is_refused_with_the_reason(model):
    ckpt = checkpoint_dict(model, {})
    arch = ckpt["arch"]
    arch["layers"][0]["type"] = "conv3d"
    with pytest.raises(CheckpointError, match="checkpoint: invalid arch: layer 'conv1' has unknown type 'conv3d'"):
        validate_checkpoint(ckpt)


def test_batchnorm_step_counters_are_tolerated_on_read(model):
    ckpt = checkpoint_dict(model, {})
    state = {**ckpt["state_dict"], "bn1.num_batches_tracked": torch.tensor(3)}
    assert validate_checkpoint({**ckpt, "state_dict": state})["arch"] == model.arch


@pytest.mark.parametrize("key, edit, message", [
    ("bn1.running_var", lambda t: t.__setitem__(2, -0.5),
     "state_dict['bn1.running_var'] is a variance and must be >= 0 (layer 'bn1', parameter 'running_var': "
     "element 2 is -0.5)"),
    ("fc.weight", lambda t: t.__setitem__((0, 3), 1e308),
     "state_dict['fc.weight'] holds a value beyond ±1e+12 (layer 'fc', parameter 'weight': element 3 is 1e+308)"),
    ("bn2.weight", lambda t: t.__setitem__(1, 1e-40),
     "state_dict['bn2.weight'] holds a subnormal value (nonzero, below float32's smallest normal 1.175e-38) "
     "(layer 'bn2', parameter 'weight': element 1 is 1e-40)"),
    ("conv1.weight", lambda t: t.__setitem__((0, 0, 0, 0), float("-inf")),
     "state_dict['conv1.weight'] holds NaN or infinite values (layer 'conv1', parameter 'weight': "
     "element 0 is -inf)"),
])
def test_finite_but_impossible_values_are_refused_naming_layer_and_parameter(model, key, edit, message):
    ckpt = checkpoint_dict(model, {})
    state = {k: v.double() for k, v in ckpt["state_dict"].items()}  # float64 holds 1e308 and 1e-40 exactly
    edit(state[key])
    with pytest.raises(CheckpointError) as info:
        validate_checkpoint({**ckpt, "state_dict": state})
    assert str(info.value) == f"checkpoint: {message}"


def test_zero_variance_and_exact_zeros_are_valid(model):
    ckpt = checkpoint_dict(model, {})
    state = dict(ckpt["state_dict"])
    state["bn1.running_var"] = torch.zeros_like(state["bn1.running_var"])  # a dead channel: var + eps > 0
    state["fc.weight"] = torch.zeros_like(state["fc.weight"])
    assert validate_checkpoint({**ckpt, "state_dict": state})["arch"] == model.arch


def test_a_full_disk_names_the_checkpoint_and_leaves_no_partial_file(model, tmp_path, monkeypatch):
    import errno

    def write_then_fill_the_disk(obj, f):  # a real full disk cannot be arranged in a test
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", write_then_fill_the_disk)
    with pytest.raises(OSError) as info:
        save_checkpoint(model, tmp_path / "m.pt")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []
