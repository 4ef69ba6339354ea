"""A small tritonclient helper for model ``fgsa_pose`` (HTTP or gRPC): the same inputs as the repository README."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

MODEL = "fgsa_pose"


def _module(protocol: str):
    if protocol == "http":
        import tritonclient.http as module
    elif protocol == "grpc":
        import tritonclient.grpc as module
    else:
        raise ValueError(f"protocol: expected 'http' or 'grpc', got {protocol!r}")
    return module


def image_input(image: Any) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array, encoded bytes, or a file path -> the IMAGE tensor of one request."""
    if isinstance(image, (str, Path)):
        image = Path(image).read_bytes()
    if isinstance(image, (bytes, bytearray)):
        return np.frombuffer(bytes(image), np.uint8).reshape(1, 1, 1, -1)
    return np.ascontiguousarray(image)[None]


def request_inputs(module, image: Any, category: str, box: Any = None,
                   image_dtype: str = "UINT8") -> list:
    arrays = {"IMAGE": (image_input(image), image_dtype),
              "CATEGORY": (np.array([[category.encode()]], dtype=object), "BYTES")}
    if box is not None:
        arrays["BOX"] = (np.asarray(box, np.float32).reshape(1, 4), "FP32")
    inputs = []
    for name, (arr, dtype) in arrays.items():
        item = module.InferInput(name, list(arr.shape), dtype)
        item.set_data_from_numpy(arr)
        inputs.append(item)
    return inputs


class PoseClient:
    """``PoseClient("127.0.0.1:8000").predict(image, "cat")`` -> ((K_c, 2) float32 keypoints, names)."""

    def __init__(self, url: str, protocol: str = "http", concurrency: int = 1):
        self.module = _module(protocol)
        kw = {"concurrency": concurrency} if protocol == "http" else {}
        self.client = self.module.InferenceServerClient(url, **kw)

    def predict(self, image: Any, category: str, box: Any = None) -> tuple[np.ndarray, list[str]]:
        result = self.client.infer(MODEL, request_inputs(self.module, image, category, box))
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in result.as_numpy("KEYPOINT_NAMES")[0]]
        return result.as_numpy("KEYPOINTS")[0], names

    def infer_raw(self, inputs: list):
        return self.client.infer(MODEL, inputs)

    def statistics(self) -> dict:
        """{'requests': successful inferences, 'executions': model executions} of fgsa_pose."""
        stats = self.client.get_inference_statistics(MODEL)
        if not isinstance(stats, dict):  # gRPC: protobuf message
            from google.protobuf.json_format import MessageToDict
            stats = MessageToDict(stats, preserving_proto_field_name=True)
        model = stats["model_stats"][0]
        return {"requests": int(model.get("inference_count", 0)), "executions": int(model.get("execution_count", 0)),
                "failures": int(model.get("inference_stats", {}).get("fail", {}).get("count", 0))}

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "PoseClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
