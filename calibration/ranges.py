"""Activation ranges with onnxruntime.quantization's calibrators, and a JSON cache keyed by graph hash.

Methods (onnxruntime's implementations, nothing hand-written): ``minmax`` (largest |value| seen),
``percentile`` (99.999th percentile of |value|, histogram of 2048 bins) and ``entropy`` (KL-divergence
threshold, 128 bins). Only the inputs and outputs of Conv / MatMul / Gemm nodes are calibrated: those
are the only tensors a Q/DQ pair is put on.

Our graphs contain plugin nodes that ONNX Runtime runs only as onnxruntime-extensions Python ops (see
``export/ort_ops.py``), so the calibrators' session is created through :func:`export.ort_ops.cpu_session`.
Pairs are fed in chunks of ``chunk`` so histogram methods never hold more than that many pairs of
activations in memory (the calibrators merge ranges / histograms across calls).

Cache: one JSON file holds any number of entries, keyed by ``<graph sha256>:<method>:<episode-set
signature>``; a hit skips inference entirely. The graph hash covers the graph only, not its metadata.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Iterable

import onnx
from tqdm import tqdm

from calibration.graph import GEMMS, graph_sha256
from fgsa.errors import InputError

METHODS = ("minmax", "percentile", "entropy")
CACHE_FORMAT = "fgsa-calibration-ranges"
CACHE_VERSION = 1


def _calibrator_class(method: str):
    from onnxruntime.quantization import calibrate as C

    from export.ort_ops import cpu_session

    base = {"minmax": C.MinMaxCalibrater, "percentile": C.PercentileCalibrater, "entropy": C.EntropyCalibrater}[method]

    class WithReferenceOps(base):
        """The library's calibrator, with a session that also runs our plugin nodes."""

        def create_inference_session(self):
            self.infer_session = cpu_session(onnx.load(self.augmented_model_path), threads=self.threads)

    return WithReferenceOps


def _method_options(method: str) -> dict:
    if method == "minmax":
        return {"symmetric": True}
    if method == "percentile":
        return {"symmetric": True, "num_bins": 2048, "percentile": 99.999}
    return {"symmetric": True, "num_bins": 128, "num_quantized_bins": 128}


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: list[dict]):
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


def compute_ranges(model: onnx.ModelProto, feeds: Iterable[dict], method: str = "minmax", chunk: int = 8,
                   threads: int = 1, progress: bool = True, total: int | None = None):
    """Run ``model`` (fp32) on every feed and return onnxruntime's ``TensorsData`` for Conv/MatMul/Gemm I/O."""
    if method not in METHODS:
        raise InputError("--method", f"one of {', '.join(METHODS)}", method)
    with tempfile.TemporaryDirectory(prefix="fgsa-calib-") as tmp:
        src = Path(tmp) / "model.onnx"
        onnx.save(model, src)
        cls = _calibrator_class(method)
        cal = cls(src, op_types_to_calibrate=list(GEMMS), augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                  **_method_options(method))
        cal.threads = threads
        cal.augment_graph()
        cal.create_inference_session()
        quiet = contextlib.redirect_stdout(io.StringIO())  # the histogram calibrators print to stdout
        batch: list[dict] = []
        seen = 0
        bar = tqdm(total=total, desc=f"calibrate ({method})", disable=None if progress else True, dynamic_ncols=True, leave=False)
        for feed in feeds:
            batch.append(feed)
            if len(batch) == chunk:
                with quiet:
                    cal.collect_data(_Reader(batch))
                bar.update(len(batch))
                seen, batch = seen + len(batch), []
        if batch:
            with quiet:
                cal.collect_data(_Reader(batch))
            bar.update(len(batch))
            seen += len(batch)
        bar.close()
        if seen == 0:
            raise InputError("calibration data", "at least one episode", "none")
        with quiet:
            return cal.compute_data()


class RangeCache:
    """A JSON file of activation ranges: ``{key: {"method", "episodes", "ranges"}}`` (see module docstring)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None

    @staticmethod
    def key(model: onnx.ModelProto, method: str, signature: str) -> str:
        return f"{graph_sha256(model)}:{method}:{signature}"

    def _load(self) -> dict:
        if self.path is None or not self.path.is_file():
            return {"format": CACHE_FORMAT, "version": CACHE_VERSION, "entries": {}}
        try:
            data = json.loads(self.path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError("--cache", "a calibration range cache written by this tool (JSON)",
                             f"{self.path}: {exc}", "delete the file to recompute the ranges") from None
        if data.get("format") != CACHE_FORMAT:
            raise InputError("--cache", f"a '{CACHE_FORMAT}' JSON file", f"{self.path} (format {data.get('format')!r})",
                             "point --cache at another file")
        return data

    def get(self, key: str):
        from onnxruntime.quantization.calibrate import TensorsData

        entry = self._load()["entries"].get(key)
        return None if entry is None else TensorsData.from_dict(entry["ranges"])

    def put(self, key: str, ranges, episodes: int) -> None:
        from onnxruntime.quantization.calibrate import CalibrationCacheEncoder

        if self.path is None:
            return
        data = self._load()
        data["entries"][key] = {"method": key.split(":")[1], "episodes": episodes, "ranges": ranges.to_dict()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, cls=CalibrationCacheEncoder))
        tmp.replace(self.path)


def cached_ranges(model: onnx.ModelProto, episodes, method: str, cache: RangeCache, threads: int = 1,
                  progress: bool = True):
    """Ranges from ``cache`` when it has this graph / method / episode set, else computed and stored.
    ``episodes`` is a :class:`calibration.episodes.EpisodeSet`. Returns (ranges, hit)."""
    key = RangeCache.key(model, method, episodes.signature)
    ranges = cache.get(key)
    if ranges is not None:
        return ranges, True
    ranges = compute_ranges(model, episodes.feeds(), method, threads=threads, progress=progress, total=len(episodes))
    cache.put(key, ranges, len(episodes))
    if progress:
        print(f"calibrated {len(ranges.keys())} tensors on {len(episodes)} pairs ({method})", file=sys.stderr)
    return ranges, False
