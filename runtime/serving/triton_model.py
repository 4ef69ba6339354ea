"""Triton Python-backend model ``fgsa_pose`` (copied into the repository as ``1/model.py``).

Only the Triton glue lives here; the work is :class:`runtime.serving.pose.PoseModel`. Each request (B images,
B <= max_batch_size) is parsed on its own (a bad one gets an error response naming the input, never a
traceback), the rows of the good ones of an execution run as one batch.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from runtime.errors import FgsaError, InputError
from runtime.serving.pose import PoseModel


def _error(exc):
    """A bad request is the client's error (HTTP 400 / INVALID_ARGUMENT) naming the input; anything else is
    the server's, as one line (never a traceback with the server's paths)."""
    if isinstance(exc, InputError):
        return pb_utils.TritonError(str(exc), pb_utils.TritonError.INVALID_ARG)
    message = str(exc) if isinstance(exc, FgsaError) else f"{type(exc).__name__}: {exc}"
    return pb_utils.TritonError(message.splitlines()[0][:500] if message else type(exc).__name__,
                                pb_utils.TritonError.INTERNAL)


def _tensor(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


def _outputs(rows, results):
    """One request's KEYPOINTS [B, K, 2] and KEYPOINT_NAMES [B, K]: rows of categories with fewer keypoints
    than the request's largest are padded with NaN points and empty names."""
    k = max(len(r) for r in results)
    points = np.full((len(rows), k, 2), np.nan, np.float32)
    names = np.full((len(rows), k), b"", dtype=object)
    for i, (row, xy) in enumerate(zip(rows, results)):
        points[i, : len(xy)] = xy
        names[i, : len(xy)] = [n.encode() for n in row.category.keypoint_names[: len(xy)]]
    return [pb_utils.Tensor("KEYPOINTS", points), pb_utils.Tensor("KEYPOINT_NAMES", names)]


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        version = Path(args["model_repository"]) / args["model_version"]
        threads = int(params["threads"]) if params.get("threads") else None
        # a GPU instance runs on the device Triton placed it on (TensorRT plans, ONNX Runtime's CUDA provider)
        device = int(args.get("model_instance_device_id") or 0) if args.get("model_instance_kind") == "GPU" else 0
        self.model = PoseModel(version, params.get("backend", "auto"), threads=threads, device=device)

    def execute(self, requests):
        responses = [None] * len(requests)
        rows, spans = [], []  # every good request's rows, run as one batch; spans: (request, start, stop)
        for i, request in enumerate(requests):
            try:
                parsed = self.model.parse_request(_tensor(request, "IMAGE"), _tensor(request, "BOX"),
                                                  _tensor(request, "CATEGORY"))
            except Exception as exc:  # noqa: BLE001 (each request's failure is its own response)
                responses[i] = pb_utils.InferenceResponse(error=_error(exc))
                continue
            spans.append((i, len(rows), len(rows) + len(parsed)))
            rows.extend(parsed)
        if rows:
            try:
                results = self.model.run(rows)
            except Exception as exc:  # noqa: BLE001
                results = [exc] * len(rows)
            for i, start, stop in spans:
                failed = next((r for r in results[start:stop] if isinstance(r, Exception)), None)
                responses[i] = (pb_utils.InferenceResponse(error=_error(failed)) if failed is not None else
                                pb_utils.InferenceResponse(_outputs(rows[start:stop], results[start:stop])))
        return responses

    def finalize(self):
        self.model.close()
