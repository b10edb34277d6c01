"""Training pieces: augmentation and the configuration's validation."""
import pytest
import torch

from snn.augment import random_affine
from snn.data import load_mnist
from snn.train import TrainConfig


def images(n=8):
    x, _ = load_mnist(split="train", limit=n)
    return torch.from_numpy(x).float() / 255


def test_zero_augmentation_is_the_identity():
    x = images()
    out = random_affine(x, torch.Generator().manual_seed(0), shift=0, degrees=0, scale=0)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)  # grid_sample rounding


def test_augmentation_moves_pixels_but_keeps_digits_inside_the_frame():
    x = images()
    out = random_affine(x, torch.Generator().manual_seed(0), shift=2, degrees=10, scale=0.1)
    assert out.shape == x.shape and not torch.allclose(out, x)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    # MNIST digits sit in a 20x20 box: a few pixels of shift/scale keep most of the ink
    ratio = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert bool(((ratio > 0.7) & (ratio < 1.3)).all())


def test_augmentation_is_reproducible_from_the_generator():
    x = images()
    a = random_affine(x, torch.Generator().manual_seed(3))
    b = random_affine(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs, message", [
    ({"shift": -1}, "shift must be a number in [0, 8.0], not -1"),
    ({"degrees": 90}, "degrees must be a number in [0, 45.0], not 90"),
    ({"scale": 0.9}, "scale must be a number in [0, 0.5], not 0.9"),
])
def test_augmentation_parameters_are_checked(kwargs, message):
    with pytest.raises(ValueError) as info:
        random_affine(images(2), torch.Generator(), **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be an int >= 1, not 0"),
    ({"lr": 0}, "lr must be a number in (0, 1], not 0"),
    ({"surrogate": "relu"}, "surrogate must be one of ['atan', 'sigmoid', 'ste'], not 'relu'"),
    ({"ema": 1.0}, "ema must be a number in [0, 1), not 1.0"),
    ({"train_limit": 0}, "train_limit must be None or an int >= 1, not 0"),
])
def test_train_config_is_checked(kwargs, message):
    with pytest.raises(ValueError) as info:
        TrainConfig(**kwargs)
    assert str(info.value) == message


def test_train_config_builds_the_zoo_arch():
    arch = TrainConfig(neuron="binary", timesteps=3, width=8).arch()
    assert arch["timesteps"] == 3
    assert {layer["neuron"] for layer in arch["layers"] if layer["type"] == "lif"} == {"binary"}
    assert arch["layers"][0]["out_channels"] == 8


@pytest.mark.parametrize("total_steps", range(1, 41))
def test_learning_rate_schedule_runs_for_any_number_of_steps(total_steps):
    # OneCycleLR alone divides by zero at 4 steps (one warm-up step): a quick `--train-limit` run.
    from snn.train import learning_rate_schedule
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.01)
    schedule = learning_rate_schedule(optimizer, 0.01, total_steps)
    rates = []
    for _ in range(total_steps):
        optimizer.step()
        schedule.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert all(0 < rate <= 0.01 + 1e-12 for rate in rates)


def test_training_of_four_steps_finishes():
    from snn.train import train
    model, history = train(TrainConfig(timesteps=1, channels=(4, 8, 8), batch_size=64, train_limit=256,
                                       heldout_limit=20, threads=1, epochs=1, augment=False))
    assert len(history) == 1 and 0.0 <= history[0].heldout_accuracy <= 1.0 and history[0].loss > 0
