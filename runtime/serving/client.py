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


def _encoded(image: Any) -> bytes | None:
    """The bytes of an encoded image (bytes or a file path), None for pixels."""
    if isinstance(image, (str, Path)):
        return Path(image).read_bytes()
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    return None


def image_input(images: Any) -> np.ndarray:
    """The IMAGE tensor of one request from one image or a list of them ((H, W, 3) uint8 RGB arrays, encoded
    bytes, or file paths): [B, H, W, 3] pixels when every image is pixels of one size, else [B, 1, 1, N]
    encoded files zero-padded to the longest (pixels of other sizes are encoded as PNG, losslessly)."""
    items = list(images) if isinstance(images, (list, tuple)) else [images]
    encoded = [_encoded(i) for i in items]  # each file read once
    raw = [None if e is not None else np.ascontiguousarray(i, dtype=np.uint8) for i, e in zip(items, encoded)]
    if all(r is not None for r in raw) and len({r.shape for r in raw}) == 1:
        return np.stack(raw)
    files = [e if r is None else _png(r) for e, r in zip(encoded, raw)]
    out = np.zeros((len(files), 1, 1, max(len(f) for f in files)), np.uint8)
    for row, data in zip(out, files):
        row[0, 0, : len(data)] = np.frombuffer(data, np.uint8)
    return out


def _png(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"image of shape {rgb.shape}: expected (H, W, 3) uint8 RGB pixels")
    return buf.tobytes()


def request_inputs(module, image: Any, category: str | list[str], box: Any = None,
                   image_dtype: str = "UINT8") -> list:
    """IMAGE, CATEGORY (and BOX) of one request: one image or a list (B rows), one category for all or one
    per image, boxes (B, 4) or None."""
    images = image_input(image)
    b = images.shape[0]
    cats = [category] * b if isinstance(category, str) else list(category)
    arrays = {"IMAGE": (images, image_dtype),
              "CATEGORY": (np.array([[c.encode()] for c in cats], dtype=object), "BYTES")}
    if box is not None:
        arrays["BOX"] = (np.asarray(box, np.float32).reshape(b, 4), "FP32")
    inputs = []
    for name, (arr, dtype) in arrays.items():
        item = module.InferInput(name, list(arr.shape), dtype)
        item.set_data_from_numpy(arr)
        inputs.append(item)
    return inputs


def _names(row) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in row if n not in (b"", "")]


class PoseClient:
    """``PoseClient("127.0.0.1:8000").predict(image, "cat")`` -> ((K_c, 2) float32 keypoints, names)."""

    def __init__(self, url: str, protocol: str = "http", concurrency: int = 1):
        self.module = _module(protocol)
        kw = {"concurrency": concurrency} if protocol == "http" else {}
        self.client = self.module.InferenceServerClient(url, **kw)

    def predict(self, image: Any, category: str, box: Any = None) -> tuple[np.ndarray, list[str]]:
        result = self.client.infer(MODEL, request_inputs(self.module, image, category, box))
        names = _names(result.as_numpy("KEYPOINT_NAMES")[0])
        return result.as_numpy("KEYPOINTS")[0][: len(names)], names

    def predict_batch(self, images: list, categories: str | list[str], boxes: Any = None
                      ) -> list[tuple[np.ndarray, list[str]]]:
        """B images in one request (B <= the model's max_batch_size): per image (keypoints, names)."""
        result = self.client.infer(MODEL, request_inputs(self.module, list(images), categories, boxes))
        points, names = result.as_numpy("KEYPOINTS"), result.as_numpy("KEYPOINT_NAMES")
        return [(xy[: len(n)], n) for xy, n in zip(points, (_names(row) for row in names))]

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
