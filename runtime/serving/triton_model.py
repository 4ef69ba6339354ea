"""Triton Python-backend model ``fgsa_pose`` (copied into the repository as ``1/model.py``).

Only the Triton glue lives here; the work is :class:`runtime.serving.pose.PoseModel`. Each request is parsed
on its own (a bad one gets an error response naming the input), the good ones of an execution run as one batch.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from runtime.errors import FgsaError, InputError
from runtime.serving.pose import PoseModel


def _error(exc):
    """A bad request is the client's error (HTTP 400 / INVALID_ARGUMENT); anything else is the server's."""
    code = pb_utils.TritonError.INVALID_ARG if isinstance(exc, InputError) else pb_utils.TritonError.INTERNAL
    return pb_utils.TritonError(str(exc), code)


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
        rows, where = [], []
        for i, request in enumerate(requests):
            try:
                image = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
                box = pb_utils.get_input_tensor_by_name(request, "BOX")
                category = pb_utils.get_input_tensor_by_name(request, "CATEGORY").as_numpy()
                if image.shape[0] != 1:
                    raise InputError("IMAGE", "a batch of 1 per request", image.shape[0])
                box = None if box is None else box.as_numpy()[0]
                rows.append(self.model.parse(image[0], box, category[0]))
                where.append(i)
            except FgsaError as exc:
                responses[i] = pb_utils.InferenceResponse(error=_error(exc))
        if rows:
            try:
                results = self.model.run(rows)
            except FgsaError as exc:
                results = [exc] * len(rows)
            for i, row, result in zip(where, rows, results):
                if isinstance(result, Exception):
                    responses[i] = pb_utils.InferenceResponse(error=_error(result))
                    continue
                names = np.array([n.encode() for n in row.category.keypoint_names], dtype=object)
                responses[i] = pb_utils.InferenceResponse([
                    pb_utils.Tensor("KEYPOINTS", result[None]),
                    pb_utils.Tensor("KEYPOINT_NAMES", names[None])])
        return responses

    def finalize(self):
        self.model.close()
