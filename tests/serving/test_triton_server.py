"""A real tritonserver on 127.0.0.1 serving the demo checkpoint's repository (two held-out categories)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytestmark = pytest.mark.slow

# Server and reference run the same graphs on the same ONNX Runtime and preprocessing; only the batch
# composition differs (float32 sums in another order): 1e-4 px is ~1000x the float32 rounding of a
# ~300 px coordinate and far below any real deviation (a wrong support state moves points by pixels).
TOL_PX = 1e-4


def _encoded(image: np.ndarray, ext: str) -> bytes:
    import cv2

    ok, buf = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def _fire(url: str, protocol: str, jobs: list, workers: int = 32) -> list:
    """Send every (image, category, box) job concurrently; one client per thread."""
    from runtime.serving.client import PoseClient

    local = threading.local()
    clients = []

    def one(job):
        if not hasattr(local, "client"):
            local.client = PoseClient(url, protocol)
            clients.append(local.client)
        return local.client.predict(*job)

    try:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, jobs))
    finally:
        for c in clients:
            c.close()


def test_repository_loads_with_its_batching_config(server):
    from runtime.serving.client import PoseClient

    with PoseClient(server.http_url) as client:
        assert client.client.is_model_ready("fgsa_pose")
        config = client.client.get_model_config("fgsa_pose")
    assert config["max_batch_size"] == 32
    assert int(config["dynamic_batching"]["max_queue_delay_microseconds"]) == 5000  # proto int64: a JSON string
    assert {i["name"] for i in config["input"]} == {"IMAGE", "BOX", "CATEGORY"}


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_64_concurrent_requests_equal_engine_predict(server, queries, expected, protocol):
    from runtime.serving.client import PoseClient

    rng = np.random.default_rng(12 if protocol == "http" else 13)
    jobs, want, cats = [], [], set()
    for n in range(64):
        i = int(rng.integers(len(queries)))
        cat, image, box = queries[i]
        form = n % 3  # raw pixels, PNG bytes, and the same pixels again: every IMAGE form mixed in one run
        jobs.append((_encoded(image, ".png") if form == 1 else image, cat, box))
        want.append(expected[i])
        cats.add(cat)
    assert len(cats) == 2
    url = server.http_url if protocol == "http" else server.grpc_url
    with PoseClient(url, protocol) as client:
        before = client.statistics()
    results = _fire(url, protocol, jobs)
    with PoseClient(url, protocol) as client:
        after = client.statistics()
    for (xy, names), ref, job in zip(results, want, jobs):
        assert xy.shape == ref.shape and len(names) == len(ref)
        np.testing.assert_allclose(xy, ref, rtol=0, atol=TOL_PX, err_msg=f"category {job[1]}")
    requests = after["requests"] - before["requests"]
    executions = after["executions"] - before["executions"]
    assert requests == 64
    assert executions < requests, f"{executions} executions for {requests} requests: nothing was batched"


def test_bad_requests_are_errors_naming_the_input_and_the_server_stays_up(server, queries, expected):
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    from runtime.serving.client import PoseClient, request_inputs

    cat, image, box = queries[0]
    known = sorted({q[0] for q in queries})
    with PoseClient(server.http_url) as client:
        def expect_error(inputs, *words):
            with pytest.raises(InferenceServerException) as info:
                client.infer_raw(inputs)
            for w in words:
                assert w in str(info.value), str(info.value)

        # unknown category: refused with the known list
        expect_error(request_inputs(http, image, "no_such_category", box), "CATEGORY", *known)
        # corrupt image bytes
        expect_error(request_inputs(http, b"\x89PNG not really" * 8, cat, box), "IMAGE")
        # wrong dtype: float pixels
        wrong = http.InferInput("IMAGE", [1, *image.shape], "FP32")
        wrong.set_data_from_numpy(image[None].astype(np.float32))
        expect_error([wrong] + request_inputs(http, image, cat)[1:], "IMAGE")
        # wrong shape: BOX of 3 numbers; a box outside the image
        bad_box = http.InferInput("BOX", [1, 3], "FP32")
        bad_box.set_data_from_numpy(np.ones((1, 3), np.float32))
        expect_error(request_inputs(http, image, cat) + [bad_box], "BOX")
        expect_error(request_inputs(http, image, cat, [5000.0, 5000.0, 10.0, 10.0]), "BOX", "outside the image")
        expect_error(request_inputs(http, image, cat, [10.0, 10.0, float("nan"), 10.0]), "BOX")
        # wrong shape: a 4-channel image; missing input: no CATEGORY
        expect_error(request_inputs(http, np.zeros((8, 8, 4), np.uint8), cat), "IMAGE")
        expect_error(request_inputs(http, image, cat)[:1], "CATEGORY")
        # and the server still serves
        xy, _ = client.predict(image, cat, box)
    np.testing.assert_allclose(xy, expected[0], rtol=0, atol=TOL_PX)


def test_bad_rows_in_a_batch_do_not_spoil_the_good_ones(server, queries, expected):
    """Good and bad requests sent together (so batched together): each bad one fails alone."""
    from tritonclient.utils import InferenceServerException

    jobs = []
    for n in range(16):
        cat, image, box = queries[n % len(queries)]
        jobs.append((n, (image, cat if n % 2 == 0 else "not_a_category", box)))

    def one(item):
        n, job = item
        try:
            return n, _fire(server.http_url, "http", [job], workers=1)[0]
        except InferenceServerException as exc:
            return n, exc

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, jobs))
    for n, result in results:
        if n % 2 == 0:
            np.testing.assert_allclose(result[0], expected[n % len(queries)], rtol=0, atol=TOL_PX)
        else:
            assert isinstance(result, InferenceServerException) and "CATEGORY" in str(result)
