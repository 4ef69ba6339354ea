"""Served = certified: real photographs decoded from JPEG/PNG files give the same crops in both environments,
a running server's keypoints equal PyTorch's and the in-process Engine's (runtime.parity --triton), bad
requests are INVALID_ARG naming the input, client batches of B images work, repositories carry their op
library, and the operator's tools (metrics, bench --url, perf_analyzer data) work."""

from __future__ import annotations

import json
import struct
import subprocess
import urllib.request
import zlib

import numpy as np
import pytest

from tests.serving.conftest import CKPT, ROOT, export_split_graphs, torch_python

pytestmark = pytest.mark.slow
TOL_PX = 1e-4  # as in test_triton_server.py: same graphs and preprocessing, another batch composition


def _in_torch_env(code: str) -> str:
    proc = subprocess.run([torch_python(), "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_both_environments_crop_the_photos_bit_for_bit(photos):
    import cv2

    from fgsa.preprocess.crop import opencv_mismatch
    from tests.photos import crop_digests

    here = crop_digests(photos)
    there = json.loads(_in_torch_env(
        "import json, cv2, numpy; from pathlib import Path; from tests.photos import crop_digests; "
        f"print(json.dumps({{'cv2': cv2.__version__, 'numpy': numpy.__version__, "
        f"'crops': crop_digests(Path({str(photos)!r}))}}))"))
    assert there["numpy"].split(".")[0] != np.__version__.split(".")[0]  # really two environments
    assert opencv_mismatch() is None and there["cv2"] == cv2.__version__
    assert len(here) == 5 and there["crops"] == here


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_parity_triton_certifies_the_served_keypoints(server, repository, photos, tmp_path, protocol):
    url = server.http_url if protocol == "http" else server.grpc_url
    cmd = [torch_python(), "-m", "runtime.parity", "--ckpt", str(CKPT), "--triton", url, "--protocol", protocol,
           "--repository", str(repository), "--data", str(photos), "--queries", "4", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["verdict"] == "PASS" and report["categories"] == ["photo"] and report["query_images"] == 4
    served = report["differences_px"]["served_vs_in_process"]
    assert served["keypoints"] == 4 * 5 and served["max_px"] <= 0.05
    assert report["differences_px"]["served_vs_pytorch"]["max_px"] < 0.05
    assert "Served parity" in (tmp_path / "parity.md").read_text()


def test_parity_triton_names_a_server_that_does_not_answer(repository, photos, tmp_path):
    from runtime.serving.server import free_port

    cmd = [torch_python(), "-m", "runtime.parity", "--ckpt", str(CKPT), "--triton", f"127.0.0.1:{free_port()}",
           "--repository", str(repository), "--data", str(photos), "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "--triton" in lines[0]


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (and nothing else worth decoding)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
            + b"\0\0\0\0IEND\xaeB`\x82")


def test_malformed_requests_are_invalid_arg_naming_the_input(server, queries, expected):
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    from runtime.serving.client import PoseClient, request_inputs

    cat, image, box = queries[0]

    def raw(name, arr, dtype):
        item = http.InferInput(name, list(arr.shape), dtype)
        item.set_data_from_numpy(arr)
        return item

    category = raw("CATEGORY", np.array([[cat.encode()]], dtype=object), "BYTES")
    cases = {
        "empty bytes": ([raw("IMAGE", np.zeros((1, 1, 1, 0), np.uint8), "UINT8"), category], ("IMAGE", "no bytes")),
        "huge PNG header": ([raw("IMAGE", np.frombuffer(_png_header(100000, 100000), np.uint8)[None, None, None],
                                 "UINT8"), category], ("IMAGE", "100000 x 100000", "pixels")),
        "no CATEGORY": ([raw("IMAGE", image[None], "UINT8")], ("CATEGORY",)),
        "truncated JPEG": (request_inputs(http, _jpeg(image)[:-300], cat), ("IMAGE", "JPEG")),
        "rows disagree": (request_inputs(http, [image, image], cat)[:1] + [category], ("IMAGE", "batch size")),  # Triton itself checks
    }
    with PoseClient(server.http_url) as client:
        for name, (inputs, words) in cases.items():
            with pytest.raises(InferenceServerException) as info:
                client.infer_raw(inputs)
            text = str(info.value)
            assert info.value.status() == "400", (name, info.value.status(), text)
            assert "Traceback" not in text and str(ROOT) not in text, (name, text)
            for w in words:
                assert w in text, (name, w, text)
        xy, _ = client.predict(image, cat, box)  # and the server still serves
    np.testing.assert_allclose(xy, expected[0], rtol=0, atol=TOL_PX)


def _jpeg(image: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_request_may_carry_a_batch_of_images(server, queries, expected, photos, protocol):
    import cv2

    from runtime.serving.client import PoseClient

    url = server.http_url if protocol == "http" else server.grpc_url
    picks = [0, 3, 5, 1, 2]
    with PoseClient(url, protocol) as client:
        # one size of raw pixels, categories mixed; then files of different lengths (ragged, zero-padded)
        same = [i for i in picks if queries[i][1].shape == queries[picks[0]][1].shape]
        got = client.predict_batch([queries[i][1] for i in same], [queries[i][0] for i in same],
                                   [queries[i][2] for i in same])
        for (xy, names), i in zip(got, same):
            np.testing.assert_allclose(xy, expected[i], rtol=0, atol=TOL_PX)
        files = [cv2.imencode(".png" if n % 2 else ".jpg", cv2.cvtColor(queries[i][1], cv2.COLOR_RGB2BGR))[1].tobytes()
                 for n, i in enumerate(picks)]
        assert len({len(f) for f in files}) == len(files)
        got = client.predict_batch(files, [queries[i][0] for i in picks], [queries[i][2] for i in picks])
        singles = [client.predict(f, queries[i][0], queries[i][2])[0] for f, i in zip(files, picks)]
        for (xy, names), one in zip(got, singles):
            assert len(names) == len(xy)
            np.testing.assert_allclose(xy, one, rtol=0, atol=TOL_PX)
        # a photo and a synthetic image of categories with other keypoint counts in one request
        photo = (photos / "images" / "coffee.png").read_bytes()
        got = client.predict_batch([photo, files[0]], ["photo", queries[picks[0]][0]])
        assert len(got[0][0]) == 5 and len(got[1][0]) == len(expected[picks[0]])
        assert np.isfinite(got[0][0]).all() and np.isfinite(got[1][0]).all()


def test_a_batch_above_max_batch_size_is_refused(server, queries):
    from tritonclient.utils import InferenceServerException

    from runtime.serving.client import PoseClient

    cat, image, _ = queries[0]
    with PoseClient(server.http_url) as client, pytest.raises(InferenceServerException) as info:
        client.predict_batch([image] * 33, cat)
    assert "batch" in str(info.value).lower() and "32" in str(info.value)


def test_perf_analyzer_data_are_valid_requests(server, repository):
    from runtime.serving.client import PoseClient

    data = json.loads((repository / "perf_analyzer_data.json").read_text())["data"]
    assert len(data) == 3  # one per support shot of the three categories
    with PoseClient(server.http_url) as client:
        for row in data:
            image = np.array(row["IMAGE"]["content"], np.uint8).reshape(row["IMAGE"]["shape"])
            xy, names = client.predict(image.tobytes(), row["CATEGORY"]["content"][0])
            assert len(xy) == len(names) > 0 and np.isfinite(xy).all()
    assert "perf_analyzer -m fgsa_pose" in (repository / "README.md").read_text()


def test_bench_measures_a_running_server(server, repository):
    import sys

    cmd = [sys.executable, "-m", "runtime.serving.bench", "--url", server.http_url, "--grpc-url", server.grpc_url,
           "--repository", str(repository), "--clients", "1,2", "--requests", "4", "--protocol", "http,grpc"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if "req/s" in line]
    assert len(rows) == 4 and all("http" in r or "grpc" in r for r in rows)
    # a port where nothing answers: one error line, no hang
    from runtime.serving.server import free_port

    cmd = [sys.executable, "-m", "runtime.serving.bench", "--url", f"127.0.0.1:{free_port()}", "--repository",
           str(repository), "--clients", "2", "--requests", "2"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: "), proc.stderr


def test_cpu_repository_defaults_to_no_dynamic_batching_and_serves_metrics(graphs, support_spec, tmp_path):
    from runtime.serving.client import PoseClient
    from runtime.serving.repository import RepositoryOptions, write_repository
    from runtime.serving.server import TritonServer, free_port

    repo = tmp_path / "repo"
    write_repository(graphs, support_spec, repo, RepositoryOptions(kind="cpu", threads=1))
    config = (repo / "fgsa_pose" / "config.pbtxt").read_text()
    assert "dynamic_batching" not in config and "max_batch_size: 32" in config
    with TritonServer(repo, timeout=240, metrics_port=free_port()) as srv:
        with PoseClient(srv.http_url) as client:
            assert "dynamic_batching" not in client.client.get_model_config("fgsa_pose")
            client.predict(_first_photo(support_spec), "photo")
        with urllib.request.urlopen(srv.metrics_url, timeout=10) as r:
            text = r.read().decode()
    assert srv.metrics_url.startswith("http://127.0.0.1:")
    assert 'nv_inference_request_success{model="fgsa_pose"' in text


def _first_photo(support_spec) -> bytes:
    spec = json.loads(support_spec.read_text())
    photo = next(c for c in spec["categories"] if c["name"] == "photo")
    return open(photo["shots"][0]["image"], "rb").read()


@pytest.fixture(scope="module")
def plugin_graphs(tmp_path_factory):
    from kernels.ort_library import find_library

    if find_library() is None:
        pytest.skip("libfgsa_ort_ops.so not built (make ort-ops)")
    return export_split_graphs(tmp_path_factory.mktemp("serving_plugin_onnx"), "plugin", "1:4:8")


def test_a_plugin_form_repository_carries_its_op_library(plugin_graphs, support_spec, tmp_path, queries):
    import shutil

    from fgsa.plan_sidecar import file_sha256
    from runtime.errors import EngineError
    from runtime.serving.pose import PoseModel
    from runtime.serving.repository import write_repository

    repo = tmp_path / "repo"
    write_repository(plugin_graphs, support_spec, repo)
    meta = json.loads((repo / "fgsa_pose" / "1" / "engine.json").read_text())
    lib = repo / "fgsa_pose" / "1" / meta["ort_library"]
    assert lib.is_file() and meta["ort_library_sha256"] == file_sha256(lib)
    moved = tmp_path / "elsewhere"
    shutil.copytree(repo, moved)  # served from another place: it loads the library it carries
    model = PoseModel(moved / "fgsa_pose" / "1", threads=1)
    try:
        assert model.engine.native_ops == str(moved / "fgsa_pose" / "1" / meta["ort_library"])
        cat, image, box = queries[0]
        (xy,) = model.run(model.parse_request(image[None], np.asarray([box], np.float32),
                                              np.array([[cat.encode()]], dtype=object)))
        assert np.isfinite(xy).all()
    finally:
        model.close()
    with open(moved / "fgsa_pose" / "1" / meta["ort_library"], "ab") as fh:
        fh.write(b"\0")  # another build in its place
    with pytest.raises(EngineError, match="SHA-256"):
        PoseModel(moved / "fgsa_pose" / "1", threads=1)
