"""Fixtures for the serving tests. They run in the serving environment (``make serve-venv``: numpy < 2,
nvidia-pytriton, tritonclient, no torch): the demo checkpoint's graphs are exported by the project's main
environment in a subprocess (``$FGSA_TORCH_PYTHON``, default ``.venv/bin/python``), everything else here.

Skipped as a whole where tritonclient / nvidia-pytriton are not installed (the main environment's run of
the suite); ``make test`` runs them in the serving environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CKPT = ROOT / "fgsa" / "assets" / "fmmp-tiny-demo.pth"


def _serving_env_missing() -> str | None:
    for module in ("tritonclient.http", "tritonclient.grpc", "pytriton"):
        try:
            __import__(module)
        except ImportError:
            return module
    return None


def pytest_collection_modifyitems(config, items):
    missing = _serving_env_missing()
    if missing:
        skip = pytest.mark.skip(reason=f"{missing} not installed: serving tests run in .venv-serve (make test)")
        for item in items:
            if "tests/serving" in str(item.fspath):
                item.add_marker(skip)


def torch_python() -> str:
    """The project's main environment (torch, numpy 2): exports and PyTorch references run there."""
    return os.environ.get("FGSA_TORCH_PYTHON", str(ROOT / ".venv" / "bin" / "python"))


def export_split_graphs(out: Path, attention: str, dynamic_batch: str) -> Path:
    """Split graphs of the demo checkpoint, exported by the main environment."""
    cmd = [torch_python(), "-m", "export.onnx", "--ckpt", str(CKPT), "--attention", attention, "--split",
           "--dynamic-batch", dynamic_batch, "--no-parity", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def graphs(tmp_path_factory) -> Path:
    """Portable split graphs of the demo checkpoint, dynamic batch 1..32."""
    return export_split_graphs(tmp_path_factory.mktemp("serving_onnx"), "portable", "1:8:32")


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Path:
    """Two held-out synthetic categories (MP-100 layout), 6 instances each: shot 0 is the support."""
    from fgsa.data.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("serving_synthetic")
    generate(out, SyntheticConfig(seed=5, train_categories=1, val_categories=0, test_categories=2,
                                  instances_per_category=6, max_keypoints=12))
    return out


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    """Five real photographs as JPEG/PNG files with a COCO keypoint file written elsewhere (tests/photos.py)."""
    from tests.photos import write_photo_set

    return write_photo_set(tmp_path_factory.mktemp("serving_photos"))


@pytest.fixture(scope="session")
def support_spec(synthetic, photos, tmp_path_factory) -> Path:
    """Two synthetic held-out categories and the photo category (its first photo the support shot)."""
    from runtime.serving.repository import mp100_support_spec

    ann = synthetic / "annotations"
    spec = mp100_support_spec(ann / "synthetic_all.json", ann / "splits.json", shots=1)
    assert len(spec["categories"]) == 2
    spec["categories"] += mp100_support_spec(photos / "annotations" / "photos.json", shots=1)["categories"]
    path = tmp_path_factory.mktemp("serving_spec") / "support.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture(scope="session")
def repository(graphs, support_spec, tmp_path_factory) -> Path:
    from runtime.serving.repository import RepositoryOptions, write_repository

    out = tmp_path_factory.mktemp("serving_repo") / "repo"
    write_repository(graphs, support_spec, out, RepositoryOptions(max_batch=32, queue_delay_us=5000, threads=2,
                                                                  dynamic_batching=True))
    return out


@pytest.fixture(scope="session")
def server(repository):
    """A real tritonserver on 127.0.0.1 (free ports), bounded start, always stopped."""
    from runtime.serving.server import TritonServer

    srv = TritonServer(repository, timeout=240)
    srv.start()
    try:
        yield srv
    finally:
        code = srv.stop()
        assert code == 0, f"tritonserver exit code {code}"


@pytest.fixture(scope="session")
def queries(synthetic, support_spec):
    """(category name, RGB image, box) for every non-support instance of the two held-out categories."""
    from fgsa.data.mp100 import load_mp100
    from runtime.draw import load_rgb

    ann = synthetic / "annotations"
    data = load_mp100(ann / "synthetic_all.json", split_file=ann / "splits.json", subset="test")
    out = []
    for cid in data.class_ids:
        for i in data.instances_by_category[cid][1:]:
            inst = data.instance(i)
            out.append((data.categories[cid].name, load_rgb(inst.image_path), list(inst.bbox)))
    return out


@pytest.fixture(scope="session")
def expected(graphs, support_spec, queries):
    """runtime.Engine.predict per query, each category's support set on its own (the reference)."""
    import numpy as np

    from runtime.engine import Engine
    from runtime.serving.repository import compute_categories, read_support_spec

    spec = {c["name"]: c for c in read_support_spec(support_spec)}
    out = []
    with Engine(graphs, threads=2) as engine:
        for name in spec:
            compute_categories(engine, [spec[name]])
            for i, (cat, image, box) in enumerate(queries):
                if cat == name:
                    out.append((i, engine.predict(image, np.asarray(box))[0]))
    return [xy for _, xy in sorted(out, key=lambda t: t[0])]


