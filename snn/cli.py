"""`python -m snn train|eval`: train the MNIST net, or measure a checkpoint on held-out images.

Every failure prints ONE line on stderr, never a traceback (docs/errors.md), as gen, sim and
host do:

    ValueError family (CheckpointError, ArchError, DataError, bad option values)          -> 2
    OSError about the user's file or folder (missing, unreadable, read-only, full disk)   -> 2
    any other OSError, or torch failing (RuntimeError, MemoryError)                        -> 1
    KeyboardInterrupt (Ctrl-C)                                                             -> 130
"""
from __future__ import annotations

import argparse
import datetime
import errno
import json
import shlex
import sys
import time

from .arch import MAX_TIMESTEPS
from .checkpoint import check_writable, load_checkpoint, save_checkpoint
from .data import DEFAULT_DATA_DIR, HELDOUT_RANGE, TRAIN_RANGE, load_mnist
from .zoo import DEFAULT_WIDTHS, MNIST_ARCHS

FINGERPRINT_IMAGES = 200
MAX_TRAIN_BATCH = 4096  # a training batch keeps every layer's activations for the backward pass
EXIT_TOOL_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
# errno values that mean "the path you gave cannot be used as you asked" (as gen.cli): the
# user can fix them, so they are bad input, not a tool failure.
USER_PATH_ERRNOS = frozenset(getattr(errno, name) for name in (
    "ENOENT", "EACCES", "EPERM", "EROFS", "ENOTDIR", "EISDIR", "EEXIST", "ENOTEMPTY", "ENAMETOOLONG",
    "ELOOP", "EINVAL", "ENOSPC", "EDQUOT", "EFBIG", "EXDEV", "ENXIO", "ENODEV") if hasattr(errno, name))
EPILOG = ("Training uses only images 0-7999 of the t10k file; every accuracy is measured on "
          "images 8000-9999, which never influence training.")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, not {text!r}")
    return value


def _channel_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"must be three ints >= 1 separated by commas (e.g. 16,32,32), not {text!r}")
    return values


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < 1e6:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1e6), not {text!r}")
    return value


def _bounded_int(maximum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be an int between 1 and {maximum}, not {text!r}")
        return value
    return parse


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line (no usage block), exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {_one_line(message)} (see --help)\n")


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _describe_os_error(exc: OSError) -> str:
    """'<file>: <what went wrong>' in words, without Python's '[Errno N]' prefix."""
    what = exc.strerror or _one_line(exc) or type(exc).__name__
    files = [str(f) for f in (exc.filename, getattr(exc, "filename2", None)) if f is not None]
    return f"{' -> '.join(files)}: {what}" if files else what


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="python -m snn", description=__doc__.split("\n")[0], epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train the zoo MNIST SNN and write a checkpoint",
                           description="Train the zoo MNIST SNN (snn/zoo.py: 3 conv+BN+LIF layers with "
                                       "strides 1,2,2 and a linear readout) on images 0-7999, log "
                                       "held-out accuracy per epoch, write a checkpoint.", epilog=EPILOG)
    train.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="directory with the MNIST t10k IDX files "
                       "(default: %(default)s)")
    train.add_argument("--timesteps", type=_bounded_int(MAX_TIMESTEPS), default=None,
                       help=f"T, timesteps per image (1-{MAX_TIMESTEPS}; required for a spiking neuron, "
                       "1 for relu)")
    train.add_argument("--neuron", choices=["ternary", "binary", "relu"], required=True,
                       help="spike alphabet, or relu: the same layers as an ANN, to convert with "
                       "python -m snn convert (docs/msat.md)")
    train.add_argument("--out", required=True, help="checkpoint file to write (atomically)")
    train.add_argument("--epochs", type=_positive_int, default=12, help="default: %(default)s")
    train.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle "
                       "schedule (AdamW; default: %(default)s)")
    train.add_argument("--batch-size", type=_bounded_int(MAX_TRAIN_BATCH), default=64,
                       help=f"1-{MAX_TRAIN_BATCH} (default: %(default)s)")
    train.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    train.add_argument("--arch", choices=list(MNIST_ARCHS), default="chain",
                       help="chain: snn.zoo.mnist_arch; resnet: snn.zoo.mnist_resnet_arch, two conv layers and "
                       "two residual blocks, identity and projection shortcuts (default: %(default)s)")
    train.add_argument("--width", type=_positive_int, default=None, help="channels of the first conv; the "
                       "others have 2x (chain) or 2x and 4x (resnet) as many (default: 32 chain, 16 resnet)")
    train.add_argument("--channels", type=_channel_list, default=None, metavar="C1,C2,C3",
                       help="chain only: output channels of the three convs, e.g. 16,32,32 (overrides --width)")
    train.add_argument("--rate-penalty", type=_non_negative_float, default=0.0, metavar="LAMBDA",
                       help="add LAMBDA x (mean firing rate |s| over every spiking neuron and step) to the loss: "
                       "fewer events for the event-driven engines (default: %(default)s); the log reports "
                       "events per training image each epoch")
    train.add_argument("--wbits", type=_bounded_int(16), default=None, metavar="N",
                       help="quantisation-aware training for gen's N-bit weights (2-16): the last --qat-epochs "
                       "epochs freeze BatchNorm statistics and train the folded weights rounded to gen's "
                       "per-channel power-of-two grid (straight-through). The checkpoint stays float and "
                       "records wbits in its meta, which gen build takes as its default --wbits")
    train.add_argument("--qat-epochs", type=_positive_int, default=None, metavar="K",
                       help="with --wbits: epochs trained quantised, at the end (default: a third of --epochs)")
    train.add_argument("--weight-decay", type=float, default=5e-4, help="default: %(default)s")
    train.add_argument("--label-smoothing", type=float, default=0.1, help="default: %(default)s")
    train.add_argument("--ema", type=float, default=0.0, help="keep an exponential moving average of the "
                       "weights with this decay (e.g. 0.999) and save it; 0 = off (default: %(default)s)")
    train.add_argument("--no-amplitude", action="store_true", help="fixed spike amplitude 1 instead of a "
                       "learned one per layer")
    train.add_argument("--no-augment", action="store_true", help="train without random shifts/rotations/scaling")
    train.add_argument("--surrogate", choices=["ste", "sigmoid", "atan"], default="ste",
                       help="surrogate gradient (default: %(default)s, the released code's straight-through)")
    train.add_argument("--train-limit", type=_positive_int, default=None,
                       help="use only the first N training images (quick runs)")
    train.add_argument("--heldout-limit", type=_positive_int, default=None,
                       help="measure only the first N held-out images (quick runs)")
    train.add_argument("--threads", type=_positive_int, default=2, help="torch CPU threads (default: %(default)s)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--json", action="store_true", help="print the result as one JSON object")

    cv = sub.add_parser("convert", help="convert a ReLU ANN checkpoint into an SNN (docs/msat.md)",
                        description="Fold BN, calibrate lambda per layer on training images, normalise the "
                                    "weights and write an SNN checkpoint of if_subtract or msat neurons.",
                        epilog=EPILOG)
    cv.add_argument("ann", help="an ANN checkpoint (python -m snn train --neuron relu)")
    cv.add_argument("--method", choices=["msat", "if-subtract"], required=True)
    cv.add_argument("--timesteps", type=_bounded_int(MAX_TIMESTEPS), default=32,
                    help=f"T of the SNN (1-{MAX_TIMESTEPS}; default: %(default)s)")
    cv.add_argument("--percentile", type=float, default=0.9999, help="lambda = this quantile of a layer's "
                    "ReLU outputs on the calibration images; 1 = the maximum (default: %(default)s)")
    cv.add_argument("--calibration-images", type=_bounded_int(8000), default=512,
                    help="first N training images used to calibrate (1-8000; default: %(default)s)")
    cv.add_argument("--rule", choices=["ladder", "sigmoid"], default="ladder",
                    help="msat threshold: ladder = Tern's integer power-of-two ladder, sigmoid = the "
                    "authors' float rule (default: %(default)s)")
    cv.add_argument("--ladder-steps", type=_bounded_int(16), default=4, help="M, rungs below the top "
                    "(msat ladder; default: %(default)s)")
    cv.add_argument("--half-start", action="store_true", help="msat membranes start at half the first "
                    "threshold (Tern's; the authors' start at 0)")
    cv.add_argument("--no-dtt", action="store_true", help="msat without the dynamic tracking threshold")
    cv.add_argument("--no-det", action="store_true", help="msat without the dynamic evoked threshold")
    for flag, default in (("alpha", 0.3), ("ka", 1.0), ("ki", 1.0), ("C", 5.0), ("tau-mp", 0.2), ("tau-rd", 0.1)):
        cv.add_argument(f"--{flag}", type=float, default=default, help="MSAT hyperparameter (default: "
                        "%(default)s, the authors' shipped hyperparameters.txt)")
    cv.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="directory with the MNIST t10k IDX files "
                    "(default: %(default)s)")
    cv.add_argument("--heldout-limit", type=_bounded_int(2000), default=2000,
                    help="held-out images to measure the SNN on for meta (default: %(default)s)")
    cv.add_argument("--threads", type=_positive_int, default=2, help="torch CPU threads (default: %(default)s)")
    cv.add_argument("--out", required=True, help="SNN checkpoint to write (atomically)")
    cv.add_argument("--quiet", action="store_true", help="no progress bar")
    cv.add_argument("--json", action="store_true", help="print the result as one JSON object")

    ev = sub.add_parser("eval", help="accuracy of a checkpoint on the held-out images 8000-9999",
                        description="Load a checkpoint safely (weights only) and print its accuracy "
                                    "on the held-out images 8000-9999.", epilog=EPILOG)
    ev.add_argument("checkpoint", help="a Tern checkpoint (model.pt)")
    ev.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="directory with the MNIST t10k IDX files "
                    "(default: %(default)s)")
    ev.add_argument("--limit", type=_positive_int, default=None, help="only the first N held-out images")
    ev.add_argument("--batch-size", type=_positive_int, default=500, help="default: %(default)s")
    ev.add_argument("--threads", type=_positive_int, default=2, help="torch CPU threads (default: %(default)s)")
    ev.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return parser


def _train(args, argv) -> int:

    check_writable(args.out)  # now, not after minutes of training (and before importing torch)
    import torch

    from .train import TrainConfig, config_dict, train

    if args.timesteps is None and args.neuron != "relu":
        raise ValueError(f"--timesteps is required for a {args.neuron} neuron")
    if args.neuron == "relu" and args.timesteps not in (None, 1):
        raise ValueError(f"--timesteps must be 1 for relu (an ANN has no time), not {args.timesteps}")
    args.timesteps = args.timesteps or 1
    width = DEFAULT_WIDTHS[args.arch] if args.width is None else args.width
    config = TrainConfig(arch_name=args.arch, timesteps=args.timesteps, neuron=args.neuron, width=width,
                         amplitude=not args.no_amplitude, epochs=args.epochs, lr=args.lr,
                         batch_size=args.batch_size, weight_decay=args.weight_decay,
                         label_smoothing=args.label_smoothing, augment=not args.no_augment,
                         surrogate=args.surrogate, ema=args.ema, seed=args.seed, train_limit=args.train_limit,
                         heldout_limit=args.heldout_limit, threads=args.threads, channels=args.channels,
                         rate_penalty=args.rate_penalty, wbits=args.wbits, qat_epochs=args.qat_epochs)

    def on_epoch(r):
        if not args.json:
            print(f"epoch {r.epoch}/{config.epochs}: loss {r.loss:.4f}  train acc {r.train_accuracy:.4f}  "
                  f"held-out acc {r.heldout_accuracy:.4f}{f' ({config.wbits}-bit)' if r.quantised else ''}  "
                  f"events/image {r.events_per_image:,.0f}  ({r.seconds:.0f} s)", flush=True)

    start = time.perf_counter()
    model, history = train(config, data_dir=args.data, progress=not (args.quiet or args.json), on_epoch=on_epoch)
    seconds = time.perf_counter() - start
    heldout_images = HELDOUT_RANGE[1] - HELDOUT_RANGE[0] if args.heldout_limit is None else args.heldout_limit
    meta = {
        "neuron": args.neuron,
        "timesteps": args.timesteps,
        "heldout_accuracy": history[-1].heldout_accuracy,
        "heldout_images": min(heldout_images, HELDOUT_RANGE[1] - HELDOUT_RANGE[0]),
        "split": {"train": list(TRAIN_RANGE), "heldout": list(HELDOUT_RANGE)},
        "epochs": args.epochs,
        "seed": args.seed,
        "command": "python -m snn " + shlex.join(argv),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "train_seconds": round(seconds, 1),
        "train_config": config_dict(config),
        "history": [{"epoch": r.epoch, "loss": round(r.loss, 5), "train_accuracy": round(r.train_accuracy, 5),
                     "heldout_accuracy": r.heldout_accuracy, "seconds": round(r.seconds, 1),
                     "events_per_image": round(r.events_per_image, 1), "quantised": r.quantised} for r in history],
        "torch": torch.__version__,
    }
    # A quick fingerprint for tests: the accuracy on the first 200 held-out images.
    from .evaluate import accuracy
    first_x, first_y = load_mnist(args.data, split="heldout", limit=FINGERPRINT_IMAGES)
    meta["heldout_first_200_accuracy"] = accuracy(model, first_x, first_y)
    if args.wbits is not None:
        # gen build quantises with meta["wbits"] unless --wbits says otherwise; heldout_accuracy above
        # is then the fake-quantised model's (the last epoch's), this one the float model's.
        held_x, held_y = load_mnist(args.data, split="heldout", limit=args.heldout_limit)
        meta["wbits"] = args.wbits
        meta["heldout_float_accuracy"] = accuracy(model, held_x, held_y)
    path = save_checkpoint(model, args.out, meta)
    result = {"checkpoint": str(path), "heldout_accuracy": meta["heldout_accuracy"],
              "heldout_images": meta["heldout_images"], "train_seconds": meta["train_seconds"],
              "bytes": path.stat().st_size}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"wrote {path} ({result['bytes']} bytes): held-out accuracy {result['heldout_accuracy']:.4f} "
              f"on {result['heldout_images']} images, trained in {seconds:.0f} s")
    return 0


def _convert(args, argv) -> int:

    check_writable(args.out)
    import torch

    from .convert import ann_stages, convert
    from .evaluate import accuracy
    from .model import build_model

    torch.set_num_threads(args.threads)
    ann, ckpt = load_checkpoint(args.ann)
    ann_stages(ckpt["arch"], ckpt["state_dict"])  # refuse a model it cannot convert before any work
    images, _ = load_mnist(args.data, split="train", limit=args.calibration_images)
    msat_fields = {"rule": args.rule, "ladder_steps": args.ladder_steps if args.rule == "ladder" else 0,
                   "use_dtt": not args.no_dtt, "use_det": not args.no_det, "half_start": args.half_start, "alpha": args.alpha, "ka": args.ka,
                   "ki": args.ki, "C": args.C, "tau_mp": args.tau_mp, "tau_rd": args.tau_rd}
    bar = None
    if not (args.quiet or args.json):
        from tqdm import tqdm
        bar = tqdm(total=len(images), desc="calibrating", unit="image", leave=False)
    try:
        arch, state, facts = convert(ckpt, args.method, args.timesteps, args.percentile, images,
                                     msat_fields, progress=None if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()
    model = build_model(arch)
    model.load_state_dict(state)
    model.eval()
    held_x, held_y = load_mnist(args.data, split="heldout", limit=args.heldout_limit)
    snn_accuracy = accuracy(model, held_x, held_y, batch_size=100)
    ann_accuracy = accuracy(ann, held_x, held_y)
    facts["ann_heldout_accuracy"] = ann_accuracy
    facts["source"] = str(args.ann)
    meta = {"neuron": args.method.replace("-", "_"),
            "timesteps": args.timesteps, "heldout_accuracy": snn_accuracy, "heldout_images": len(held_y),
            "split": {"train": list(TRAIN_RANGE), "heldout": list(HELDOUT_RANGE)},
            "command": "python -m snn " + shlex.join(argv),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "conversion": facts, "torch": torch.__version__}
    path = save_checkpoint(model, args.out, meta)
    result = {"checkpoint": str(path), "heldout_accuracy": snn_accuracy, "ann_heldout_accuracy": ann_accuracy,
              "heldout_images": len(held_y), "lambda": facts["lambda"]}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"wrote {path}: {args.method} T={args.timesteps}, held-out accuracy {snn_accuracy:.4f} "
              f"(ANN {ann_accuracy:.4f}) on {len(held_y)} images; lambda per layer "
              + ", ".join(f"{k} {v:.3f}" for k, v in facts["lambda"].items()))
    return 0


def _eval(args) -> int:
    import torch

    from .evaluate import predict

    torch.set_num_threads(args.threads)
    model, ckpt = load_checkpoint(args.checkpoint)
    images, labels = load_mnist(args.data, split="heldout", limit=args.limit)
    predicted = predict(model, images, args.batch_size)
    correct = int((predicted == labels).sum())
    lo = HELDOUT_RANGE[0]
    result = {"checkpoint": args.checkpoint, "accuracy": correct / len(labels), "correct": correct,
              "images": len(labels), "range": [lo, lo + len(labels)],
              "neuron": ckpt["meta"].get("neuron"), "timesteps": ckpt["arch"]["timesteps"],
              "recorded_accuracy": ckpt["meta"].get("heldout_accuracy")}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.checkpoint}: accuracy {result['accuracy']:.4f} ({correct}/{len(labels)}) on held-out "
              f"images {lo}-{lo + len(labels) - 1} ({result['neuron']}, T={result['timesteps']}; "
              f"recorded at training: {result['recorded_accuracy']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser().parse_args(argv)
    except KeyboardInterrupt:
        print("python -m snn: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    prefix = f"python -m snn {args.command}"
    try:
        if args.command == "convert":
            return _convert(args, argv)
        return _train(args, argv) if args.command == "train" else _eval(args)
    except KeyboardInterrupt:  # save_checkpoint removes its temporary file: nothing half-written remains
        print(f"{prefix}: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as exc:  # CheckpointError, ArchError, DataError, bad option values
        print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"{prefix}: error: {_one_line(_describe_os_error(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT if exc.errno in USER_PATH_ERRNOS else EXIT_TOOL_FAILED
    except (RuntimeError, MemoryError) as exc:  # torch failing (e.g. out of memory): not the user's input
        print(f"{prefix}: failed: {_one_line(exc) or type(exc).__name__}", file=sys.stderr)
        return EXIT_TOOL_FAILED
