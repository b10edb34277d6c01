"""`python -m gen deploy BUILD_DIR`: the folder a user copies to the PYNQ board.

    <out>/                      (default BUILD_DIR/deploy)
      tern_<model>.bit, .hwh    the overlay, once Vivado made them (listed as missing before)
      manifest.json             what the driver reads
      host/                     the driver and `python3 -m host infer` (numpy + pynq only)
      formats/                  what the driver reads with: manifest, register map, images
      mnist_inference.ipynb     the notebook, run from this folder (BUILD_DIR = ".")
      data/heldout_images.npy   the held-out split only (uint8 [N, C, H, W]), its labels, and
                                the golden model's classes (gen.ir.golden on the build's IR)
      deploy.json               what was copied, what is missing
      README.md                 the steps on the board

The folder is written beside its final place and renamed onto it when complete, so a
half-written deployment never sits at `out`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from formats.heldout import GOLDEN_NPY, IMAGES_NPY, LABELS_NPY, load_heldout
from formats.manifest import MANIFEST_FORMAT
from formats.mnist import load_mnist

from gen.cli import report_failure
from gen.ir.golden import run as run_golden
from gen.ir.irfile import load

REPO = Path(__file__).resolve().parents[2]   # gen/flow/deploy.py -> the checkout
HOST_DIR = REPO / "host"
# The board's packages: the driver, and the numpy-only readers it imports (nothing else of Tern).
BOARD_PACKAGES = ("host", "formats")
NOTEBOOK = HOST_DIR / "notebooks" / "mnist_inference.ipynb"
MNIST_SHAPE = [1, 28, 28]
IR_STEM = "steps/03_ir/model"
BOARD_FOLDER = "/home/xilinx/jupyter_notebooks/tern_{name}"


def _read_manifest(build_dir: Path) -> dict:
    path = build_dir / "manifest.json"
    if not path.is_file():
        raise ValueError(f"build_dir must be a Tern build folder with manifest.json, not {str(build_dir)!r}")
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} must be a Tern build manifest (JSON with format 'tern-build'), "
                         f"but it is not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"{path} must be a Tern build manifest (format 'tern-build'), not {found!r}")
    return manifest


def _copy_packages(dest: Path) -> list[str]:
    """The board's packages (BOARD_PACKAGES): their Python files, no notebooks or caches."""
    copied = []
    for package in BOARD_PACKAGES:
        (dest / package).mkdir()
        for path in sorted((REPO / package).glob("*.py")):
            shutil.copy2(path, dest / package / path.name)
            copied.append(f"{package}/{path.name}")
    return copied


def _write_images(data_dir: Path, build_dir: Path, limit: int | None) -> list[str]:
    """The held-out images, their labels, and the golden model's classes on the build's IR."""
    images, labels = load_mnist(split="heldout", limit=limit)
    golden = run_golden(load(build_dir / IR_STEM), images)
    data_dir.mkdir()
    np.save(data_dir / IMAGES_NPY, images)
    np.save(data_dir / LABELS_NPY, labels.astype(np.int64))
    np.save(data_dir / GOLDEN_NPY, golden.classes.astype(np.int64))
    return [f"data/{IMAGES_NPY}", f"data/{LABELS_NPY}", f"data/{GOLDEN_NPY}"]


def readme(manifest: dict, missing: list[str], images: int) -> str:
    name = manifest["model"]["name"]
    folder = BOARD_FOLDER.format(name=name)
    lines = [f"# Tern accelerator `{name}` for the {manifest['board'].get('name', 'board')}", "",
             f"Model ID {manifest['model'].get('model_id_hex', hex(manifest['model']['model_id']))}, "
             f"T = {manifest['timesteps']}, {manifest['classes']} classes, input "
             f"{manifest['input']['shape']} uint8.", ""]
    if missing:
        lines += ["**Not ready for the board yet:** " + ", ".join(f"`{m}`" for m in missing) +
                  " missing. Make the bitstream in the build folder "
                  "(`vivado -mode batch -source build_bitstream.tcl`) and run `python -m gen deploy` again.", ""]
    lines += ["## On the board (PYNQ image 2.7 or later)", "",
              f"1. Copy this whole folder to the board, e.g. `scp -r . xilinx@pynq:{folder}`",
              "   (or drag it into Jupyter's file browser).",
              f"2. Open `http://pynq:9090`, go to `{folder.split('jupyter_notebooks/')[1]}`, open "
              "`mnist_inference.ipynb` and run all cells. It loads the overlay, checks the model ID, streams "
              f"the {images} held-out images and shows accuracy, throughput, the confusion matrix and predictions.",
              "3. Or from a shell on the board, in this folder:", "",
              "       sudo -E python3 -m host infer . --images 2000", "",
              "   (`--json` for scripts). Loading an overlay needs root, as PYNQ's own notebooks do.", "",
              "Both compare every class with the golden model's (`data/golden_classes.npy`, computed from the "
              "build's integer IR when this folder was made): the hardware must agree on every image; "
              "`python -m host infer` exits with code 1 if it does not.", "",
              "In Python:", "",
              "    from host import Accelerator", "    acc = Accelerator(\".\")", "    classes = acc.predict(images)  # uint8 [N, C, H, W]",
              "", "The driver needs numpy and the board's pynq only. Files: `manifest.json` (packing, register map), "
              "`host/` (driver), `formats/` (its manifest and image readers), `data/` (held-out images as .npy), `deploy.json` (this folder's contents).", ""]
    return "\n".join(lines)


def deploy(build_dir, out=None, images: int | None = None) -> dict:
    """Write the deployment folder of a build; returns what deploy.json records."""
    build_dir = Path(build_dir)
    manifest = _read_manifest(build_dir)
    if images is not None and (isinstance(images, bool) or not isinstance(images, int) or images < 1):
        raise ValueError(f"images must be an integer >= 1, not {images!r}")
    out = Path(out) if out is not None else build_dir / "deploy"
    if out.exists() and not (out / "deploy.json").is_file():
        raise ValueError(f"out must be a new folder or an earlier deployment (with deploy.json), not {str(out)!r}")
    work = out.parent / f".{out.name}.deploying-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        copied, missing = [], []
        for key in ("bitstream", "hwh"):
            name = manifest["files"][key]
            if (build_dir / name).is_file():
                shutil.copy2(build_dir / name, work / name)
                copied.append(name)
            else:
                missing.append(name)
        shutil.copy2(build_dir / "manifest.json", work / "manifest.json")
        copied.append("manifest.json")
        copied += _copy_packages(work)
        shutil.copy2(NOTEBOOK, work / NOTEBOOK.name)
        copied.append(NOTEBOOK.name)
        count = 0
        if manifest["input"]["shape"] == MNIST_SHAPE:
            copied += _write_images(work / "data", build_dir, images)
            count = len(load_heldout(work, limit=None)[1])
        record = {"build": str(build_dir.resolve()), "model": manifest["model"]["name"],
                  "model_id": manifest["model"]["model_id"], "files": copied, "missing": missing,
                  "heldout_images": count, "ready": not missing}
        (work / "README.md").write_text(readme(manifest, missing, count))
        (work / "deploy.json").write_text(json.dumps(record, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    record["out"] = str(out)
    return record


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("deploy", help="make the folder to copy to the board",
                              description="Collect bitstream, manifest, driver, notebook and held-out images "
                                          "of a build into one folder for the PYNQ board.")
    p.add_argument("build_dir", metavar="BUILD_DIR", help="a folder made by python -m gen build")
    p.add_argument("--out", metavar="DIR", help="deployment folder (default BUILD_DIR/deploy)")
    p.add_argument("--images", type=int, metavar="N", help="held-out images to ship (default all 2,000)")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    record = deploy(args.build_dir, out=args.out, images=args.images)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(f"deployment of {record['model']} in {record['out']}: {len(record['files'])} files, "
              f"{record['heldout_images']} held-out images")
        if record["missing"]:
            print(f"not ready for the board: {', '.join(record['missing'])} missing (run Vivado in the build folder, "
                  f"then deploy again)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gen deploy")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["deploy", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args)
    except BaseException as exc:  # noqa: BLE001 - the one place errors become one line and an exit code
        return report_failure("python -m gen deploy", exc, verbose=False)


if __name__ == "__main__":
    sys.exit(main())
