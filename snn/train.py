"""Training a SpikingNet on the project's fixed MNIST split (train: images 0–7999).

AdamW with a one-cycle learning-rate schedule, label smoothing and random affine
augmentation (8,000 training images are few). The held-out images (8000–9999) are only
measured after each epoch for the log; they never influence training or model selection:
the model returned is the one after the last epoch.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .augment import random_affine
from .data import load_mnist
from .evaluate import accuracy
from .model import SpikingNet, build_model
from .qat import FakeQuantised, fake_quant_forward, freeze_batchnorm
from .surrogate import SURROGATES
from .zoo import MNIST_ARCHS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    timesteps: int = 2
    neuron: str = "ternary"
    width: int = 32
    amplitude: bool = True
    epochs: int = 12
    lr: float = 3e-3
    batch_size: int = 64
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    augment: bool = True
    shift: float = 2.0
    degrees: float = 10.0
    scale: float = 0.1
    surrogate: str = "ste"
    ema: float = 0.0                    # decay of an exponential moving average of the weights; 0: off
    seed: int = 0
    train_limit: int | None = None      # first N training images only (tests, quick looks)
    heldout_limit: int | None = None    # first N held-out images for the per-epoch log
    threads: int = 2
    arch_name: str = "chain"            # a key of snn.zoo.MNIST_ARCHS: "chain" (mnist_arch) or "resnet"
    channels: tuple[int, ...] | None = None  # chain only: channels of each conv (overrides width)
    rate_penalty: float = 0.0           # λ: loss += λ · mean firing rate (|s|) over every spiking neuron
    wbits: int | None = None            # train the last qat_epochs against gen's wbits-bit grid (snn.qat)
    qat_epochs: int | None = None       # default with wbits: a third of the epochs (at least 1)

    def __post_init__(self):
        for name in ("timesteps", "width", "epochs", "batch_size", "threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, not {value!r}")
        for name in ("train_limit", "heldout_limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be None or an int >= 1, not {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, not {self.seed!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr <= 1):
            raise ValueError(f"lr must be a number in (0, 1], not {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and 0 <= self.weight_decay < 1):
            raise ValueError(f"weight_decay must be a number in [0, 1), not {self.weight_decay!r}")
        if not (isinstance(self.label_smoothing, (int, float)) and 0 <= self.label_smoothing < 1):
            raise ValueError(f"label_smoothing must be a number in [0, 1), not {self.label_smoothing!r}")
        if not (isinstance(self.ema, (int, float)) and 0 <= self.ema < 1):
            raise ValueError(f"ema must be a number in [0, 1), not {self.ema!r}")
        if self.arch_name not in MNIST_ARCHS:
            raise ValueError(f"arch_name must be one of {sorted(MNIST_ARCHS)}, not {self.arch_name!r}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {sorted(SURROGATES)}, not {self.surrogate!r}")
        if self.channels is not None:
            if self.arch_name != "chain":
                raise ValueError(f"channels applies to the chain arch only, not {self.arch_name!r}")
            if (not isinstance(self.channels, tuple) or not self.channels
                    or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in self.channels)):
                raise ValueError(f"channels must be a non-empty tuple of ints >= 1, not {self.channels!r}")
        if (isinstance(self.rate_penalty, bool) or not isinstance(self.rate_penalty, (int, float))
                or not 0 <= self.rate_penalty < 1e6):
            raise ValueError(f"rate_penalty must be a number in [0, 1e6), not {self.rate_penalty!r}")
        if self.wbits is not None and (isinstance(self.wbits, bool) or not isinstance(self.wbits, int)
                                       or not 2 <= self.wbits <= 16):
            raise ValueError(f"wbits must be None or an int between 2 and 16, not {self.wbits!r}")
        if self.qat_epochs is not None:
            if self.wbits is None:
                raise ValueError("qat_epochs needs wbits (quantisation-aware training)")
            if isinstance(self.qat_epochs, bool) or not isinstance(self.qat_epochs, int) \
                    or not 1 <= self.qat_epochs <= self.epochs:
                raise ValueError(f"qat_epochs must be an int between 1 and epochs ({self.epochs}), "
                                 f"not {self.qat_epochs!r}")
        if self.wbits is not None and self.neuron not in ("ternary", "binary"):
            raise ValueError(f"wbits (quantisation-aware training) needs a spiking neuron, not {self.neuron!r}")

    @property
    def first_qat_epoch(self) -> int | None:
        """The epoch (1-based) from which training sees the quantised model; None without wbits."""
        if self.wbits is None:
            return None
        qat = self.qat_epochs if self.qat_epochs is not None else max(1, self.epochs // 3)
        return self.epochs - qat + 1

    def arch(self) -> dict:
        extra = {} if self.channels is None else {"channels": self.channels}
        return MNIST_ARCHS[self.arch_name](neuron=self.neuron, timesteps=self.timesteps, width=self.width,
                                           amplitude=self.amplitude, **extra)


@dataclass
class EpochResult:
    epoch: int
    loss: float
    train_accuracy: float     # on the augmented training batches, in training mode
    heldout_accuracy: float   # eval mode, on the held-out images (or the first heldout_limit)
    seconds: float
    events_per_image: float = 0.0  # non-zero spikes per training image over all steps and spiking layers
    quantised: bool = False        # trained and measured as the fake-quantised model (snn.qat)


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for lo in range(0, n, batch_size):
        yield order[lo:lo + batch_size]


def _spike_recorder(model) -> tuple[list, list]:
    """Forward hooks that keep the spikes s (not a·s; with gradients) of every LIF in the last forward."""
    recorded = []

    def hook(module, inputs, output):
        # a·s / a is s exactly (x/x = 1 in IEEE arithmetic), and its gradient w.r.t. a is 0: the
        # rate penalty must lower firing, not shrink the amplitude.
        if module.training:  # not while measuring held-out accuracy
            recorded.append(output if module.amplitude is None else output / module.amplitude)
    return recorded, [m.register_forward_hook(hook) for m in model.lif_layers().values()]


def _firing(spikes: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean |s| over every spiking neuron and step, with gradients; total |s| without)."""
    if not spikes:
        zero = torch.zeros(())
        return zero, zero
    total = sum(s.abs().sum() for s in spikes)
    return total / sum(s.numel() for s in spikes), total.detach()


WARMUP_FRACTION = 0.25


def learning_rate_schedule(optimizer, max_lr: float, total_steps: int):
    """One-cycle (a quarter warming up, then annealing) over `total_steps` optimiser steps.

    PyTorch's OneCycleLR divides by (warm-up steps - 1) and by the annealing steps, so a run
    too short to have at least two of each (a quick `--train-limit` try) keeps `max_lr` flat.
    """
    warmup = WARMUP_FRACTION * total_steps
    if warmup < 2 or total_steps - warmup < 2:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps,
                                               pct_start=WARMUP_FRACTION)


def train(config: TrainConfig, data_dir=None, progress: bool = False,
          on_epoch: Callable[[EpochResult], None] | None = None) -> tuple[SpikingNet, list[EpochResult]]:
    """Train the zoo MNIST net described by `config`; returns (model in eval mode, history)."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    train_x, train_y = load_mnist(data_dir, split="train", limit=config.train_limit)
    held_x, held_y = load_mnist(data_dir, split="heldout", limit=config.heldout_limit)
    images = torch.from_numpy(train_x).float().div_(255.0)
    labels = torch.from_numpy(train_y)
    model = build_model(config.arch(), surrogate_function=config.surrogate)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(images) // config.batch_size)
    schedule = learning_rate_schedule(optimizer, config.lr, config.epochs * steps_per_epoch)
    # The averaged copy (BatchNorm statistics included) is what gets measured and returned.
    averaged = None
    if config.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
    recorded, hooks = _spike_recorder(model)
    first_qat = config.first_qat_epoch
    history = []
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        model.train()
        quantised = first_qat is not None and epoch >= first_qat
        if quantised:  # gen folds BN with its running statistics: freeze them, as the grid needs them
            freeze_batchnorm(model)
        total_loss, correct, seen, events = 0.0, 0, 0, 0.0
        batches = _batches(len(images), config.batch_size, generator)
        if progress:
            from tqdm import tqdm
            batches = tqdm(batches, total=steps_per_epoch, desc=f"epoch {epoch}/{config.epochs}",
                           leave=False, unit="batch")
        for index in batches:
            x, y = images[index], labels[index]
            if config.augment:
                x = random_affine(x, generator, config.shift, config.degrees, config.scale)
            recorded.clear()
            if quantised:
                logits, spikes = fake_quant_forward(model, x, config.wbits)
            else:
                logits, spikes = model(x), list(recorded)
            loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
            rate, fired = _firing(spikes)
            if config.rate_penalty:
                loss = loss + config.rate_penalty * rate
            events += float(fired)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if averaged is not None:
                averaged.update_parameters(model)
            total_loss += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            if progress:
                batches.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
        measured = model if averaged is None else averaged.module
        held = accuracy(FakeQuantised(measured, config.wbits) if quantised else measured, held_x, held_y)
        result = EpochResult(epoch, total_loss / seen, correct / seen, held, time.perf_counter() - start,
                             events_per_image=events / seen, quantised=quantised)
        log.info("epoch %d: %s", epoch, result)
        history.append(result)
        if on_epoch is not None:
            on_epoch(result)
    for hook in hooks:
        hook.remove()
    final = model if averaged is None else averaged.module
    final.eval()
    return final, history


def config_dict(config: TrainConfig) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
