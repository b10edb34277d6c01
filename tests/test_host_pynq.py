"""On a real PYNQ-Z2 (marker `board`, never in the default run): the deployed accelerator
gives exactly the golden model's classes that the deployment ships.

    cd <deployment folder> && sudo -E python3 -m pytest -m board <repo>/tests/test_host_pynq.py

TERN_DEPLOY_DIR names the deployment folder (default: the current folder). Imports only
numpy, pytest and host, as the board has nothing else of Tern.
"""
import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.board


@pytest.fixture(scope="module")
def accelerator():
    pytest.importorskip("pynq")
    from host import Accelerator

    folder = Path(os.environ.get("TERN_DEPLOY_DIR", "."))
    with Accelerator(folder) as acc:
        yield acc


def test_the_board_gives_the_golden_classes_of_every_shipped_image(accelerator):
    from host.images import load_golden, load_heldout

    folder = accelerator.info.build_dir
    images, labels = load_heldout(folder)
    golden = load_golden(folder)
    assert golden is not None, "the deployment ships data/golden_classes.npy"
    accelerator.clear_counters()
    classes = accelerator.predict(images)
    assert np.array_equal(classes, golden)
    counters = accelerator.counters()
    assert counters["images_out"] == len(images) and counters["errors"] == []
    print(f"{(classes == labels).mean():.2%} correct, {accelerator.last_run.images_per_second:,.0f} images/s")
