"""``runtime.Engine``: one API over a TensorRT plan or ONNX graph(s) of FMMP.

    engine = Engine("out/onnx")                      # a folder from export.onnx (split graphs preferred),
                                                     # a .onnx file, or a .plan (TensorRT)
    engine.set_support(images, keypoints, visible, skeleton, boxes)   # S shots of one category
    pixels = engine.predict(query_images, boxes)     # (B, K_c, 2) keypoints in original image pixels
    outputs = engine.infer({"query": ..., ...})      # raw tensors in, raw tensors out

With split graphs (``export.onnx --split``) ``set_support`` runs the support encoder once and caches the
support state (everything the model computes without the query: support features projected for each
layer, the first support layer's embeddings, position embeddings); each ``predict`` then runs only the
query backbone and the predictor. Otherwise the full graph gets the preprocessed support tensors with
every call.

Threads: ``predict`` / ``infer`` may be called from many threads. Each graph's runner holds a lock for
its whole run, so calls on one Engine serialize (each backend already spreads one call over its own
threads); create one Engine per worker for parallel throughput. ``set_support`` swaps the cached support
in one assignment, so a concurrent ``predict`` uses either the old or the new support, never a mix.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from fgsa.preprocess import IMAGE_MEAN, IMAGE_STD, decode_points
from fgsa.support_state import is_state_name
from runtime.arrays import as_host_array
from runtime.backends import BACKENDS, REGISTRY, Runner, backend_of, make_runner
from runtime.errors import EngineError, InputError
from runtime.preprocessing import SupportSet, prepare_queries, prepare_support
from runtime.specs import BatchRange

GRAPH_FILES = {"full": "model", "support_encoder": "support_encoder", "predictor": "predictor"}
ONNX, PLAN = REGISTRY["onnxruntime"], REGISTRY["tensorrt"]


def _files_in(folder: Path, suffix: str) -> dict[str, Path]:
    found = {role: folder / f"{stem}{suffix}" for role, stem in GRAPH_FILES.items()}
    return {role: p for role, p in found.items() if p.is_file()}


def resolve_files(path: str | Path, backend: str = "auto") -> tuple[str, dict[str, Path]]:
    """(backend, {role: file}) for a folder, a .onnx or a .plan; roles: full, support_encoder, predictor."""
    path = Path(path)
    if backend not in ("auto",) + BACKENDS:
        raise InputError("backend", f"'auto' or one of {BACKENDS}", repr(backend))
    if not path.exists():
        raise InputError("path", "an export folder, a .onnx file or a .plan file", f"{path} (does not exist)")
    if path.is_dir():
        plans, onnx = _files_in(path, PLAN.suffixes[0]), _files_in(path, ONNX.suffixes[0])
        if not plans:
            plans = {"full": p for p in sorted(path.glob("*" + PLAN.suffixes[0]))[:1]}
        if backend == "tensorrt" or (backend == "auto" and plans and PLAN.available(plans.values())):
            if not plans:
                raise EngineError(f"{path}: no TensorRT plan (.plan) in this folder",
                                  "build one with python -m export.trt, or use backend='onnxruntime'")
            return "tensorrt", plans
        if not onnx:
            raise EngineError(f"{path}: no model.onnx / support_encoder.onnx + predictor.onnx in this folder"
                              + (" (only .plan files, and TensorRT is not importable)" if plans else ""),
                              "export with python -m export.onnx --ckpt CKPT --out FOLDER [--split]")
        return "onnxruntime", onnx
    kind = backend_of(path)
    if kind is None:
        kinds = " or ".join(f"a {'/'.join(b.suffixes)} file" for b in REGISTRY.values())
        raise InputError("path", f"a folder, {kinds}", str(path))
    if backend not in ("auto", kind):
        fix = ("build a plan from it with python -m export.trt" if kind == "onnxruntime"
               else "pass the ONNX graph the plan was built from")
        raise EngineError(f"{path}: a {path.suffix} file cannot run on backend '{backend}'", fix)
    files = {_role_of(path): path}
    if files.keys() == {"predictor"}:  # a predictor needs its support encoder next to it
        encoder = path.with_name(GRAPH_FILES["support_encoder"] + path.suffix)
        if encoder.is_file():
            files["support_encoder"] = encoder
    return kind, files


def _role_of(path: Path) -> str:
    for role, stem in GRAPH_FILES.items():
        if path.stem == stem:
            return role
    return "full"  # any other name: the graph's inputs decide below


class Engine:
    """FMMP inference behind one API; see the module docstring.

    Args:
        path: export folder, .onnx or .plan.
        backend: "auto" (TensorRT when a plan exists and TensorRT imports, else ONNX Runtime),
            "tensorrt" or "onnxruntime".
        threads: ONNX Runtime intra-op threads (None: its default, one per physical core).
        providers: ONNX Runtime execution providers (default: CUDA if available, then CPU).
        plugin_library: libfgsa_trt_plugin.so for plans with our plugins (default: $FGSA_PLUGIN_LIBRARY, else this
            project's build/; never a path from the plan's sidecar, whose SHA-256 only confirms this one).
        device: CUDA device ordinal (TensorRT).
        cuda_graphs: replay CUDA graphs for repeated shapes (TensorRT).
        cache_support: compute the support state once in ``set_support`` when split graphs exist.
        spinning: ONNX Runtime worker threads spin between ops (False on a CPU shared with other work).
        ort_library: libfgsa_ort_ops.so for plugin-form graphs on ONNX Runtime (default: $FGSA_ORT_LIBRARY,
            then build/; False: never, plugin ops then run through the PyTorch reference).
    """

    def __init__(self, path: str | Path, backend: str = "auto", *, threads: int | None = None,
                 providers: list[str] | None = None, plugin_library: str | Path | None = None, device: int = 0,
                 cuda_graphs: bool = True, cache_support: bool = True, spinning: bool = True,
                 ort_library: str | Path | bool | None = None):
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InputError("threads", "a thread count >= 1, or None for ONNX Runtime's default", repr(threads))
        self.path = Path(path)
        self.backend, self.files = resolve_files(path, backend)
        options = dict(threads=threads, providers=providers, plugin_library=plugin_library, device=device,
                       cuda_graphs=cuda_graphs, spinning=spinning, ort_library=ort_library)
        self._runners: dict[str, Runner] = {role: make_runner(f, self.backend, **options)
                                            for role, f in self.files.items()}
        self.cached = cache_support and {"support_encoder", "predictor"} <= self._runners.keys()
        self._support: SupportSet | None = None
        self._lock = threading.Lock()
        self._closed = False
        try:
            for role in self._primary_roles():
                self._runner(role)
            self._read_geometry()
        except BaseException:
            self.close()
            raise

    # -- graphs ----------------------------------------------------------------------------------------
    def _primary_roles(self) -> list[str]:
        if self.cached:
            return ["support_encoder", "predictor"]
        if "full" in self._runners:
            return ["full"]
        if {"support_encoder", "predictor"} <= self._runners.keys():
            return ["support_encoder", "predictor"]
        if "support_encoder" in self._runners:  # a lone encoder: infer() only
            return ["support_encoder"]
        raise EngineError(f"{self.path}: a predictor graph without its support encoder",
                          "keep support_encoder.onnx/.plan next to predictor, or pass the folder or model.onnx")

    def _runner(self, role: str) -> Runner:
        """The runner of ``role``, activated on first use (secondary graphs load only when needed)."""
        if self._closed:
            raise EngineError(f"{self.path}: the engine is closed", "create a new Engine (or use it inside its with-block)")
        runner = self._runners.get(role)
        if runner is None:
            raise EngineError(f"{self.path}: no '{role}' graph", "export with --split for a cached support state")
        if not runner.is_active:
            with self._lock:
                runner.activate()
        return runner

    def _read_geometry(self) -> None:
        """Input size, shots, K and batch range from the graphs' own input specs (works for every backend)."""
        specs = {s.name: s for role in self._primary_roles() for s in self._runner(role).inputs}
        image = specs.get("query") or specs.get("support")
        shots_from = specs.get("support_points") or specs.get("support")
        if image is None or shots_from is None or not all(isinstance(d, int) for d in image.shape[-3:]):
            raise EngineError(f"{self.path}: graph inputs {sorted(specs)} are not FMMP's "
                              "(query, support or the support state, support_points, support_visible, support_links)",
                              "pass a graph written by python -m export.onnx (or a plan built from one)")
        self.input_size = int(image.shape[-1])
        self.shots = int(shots_from.shape[1])
        self.keypoints = int(specs["support_points"].shape[2]) if "support_points" in specs else None
        ranges = [self._runner(r).batch for r in self._primary_roles()]
        hi = [r.hi for r in ranges if r.hi is not None]
        self.batch = BatchRange(max(r.lo for r in ranges), min(hi) if hi else None)
        meta = next((self._runner(r).metadata for r in self._primary_roles() if self._runner(r).metadata), {})
        self.metadata = meta
        norm = meta.get("normalization")
        if norm and (not np.allclose(norm["mean"], IMAGE_MEAN) or not np.allclose(norm["std"], IMAGE_STD)):
            raise EngineError(f"{self.path}: the graph expects normalization mean {norm['mean']} std {norm['std']}, "
                              "the runtime's preprocessing uses ImageNet statistics",
                              "feed preprocessed tensors through Engine.infer instead of predict")

    @property
    def can_predict(self) -> bool:
        """False for an engine made of the support encoder alone (``infer`` only)."""
        return "full" in self._runners or "predictor" in self._runners

    @property
    def graphs(self) -> list[str]:
        return list(self._runners)

    @property
    def runners(self) -> dict[str, Runner]:
        return dict(self._runners)

    @property
    def native_ops(self) -> str | None:
        """The libfgsa_ort_ops.so whose ops the loaded ONNX Runtime sessions run plugin nodes in, if any."""
        paths = {str(r.native_ops) for r in self._runners.values() if getattr(r, "native_ops", None)}
        return min(paths) if paths else None

    # -- lifecycle -------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release every graph's session / plan; the engine cannot run afterwards."""
        self._closed = True
        for runner in self._runners.values():
            runner.deactivate()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Engine({str(self.path)!r}, backend={self.backend!r}, graphs={self.graphs}, "
                f"cached_support={self.cached}, shots={getattr(self, 'shots', '?')}, batch={self.batch.text()})")

    # -- raw tensors -----------------------------------------------------------------------------------
    def infer(self, feed: Mapping[str, Any], graph: str | None = None, check: bool = True) -> dict[str, np.ndarray]:
        """Raw tensors in, raw tensors out (names and shapes in export/README.md).

        ``graph``: "full", "support_encoder" or "predictor"; default from the feed's keys (a full-graph
        feed on split-only graphs runs the encoder, then the predictor).
        """
        if not isinstance(feed, Mapping):
            raise InputError("feed", "a dict {input name: array}", type(feed).__name__)
        if graph is None:
            keys = set(feed)
            graph = ("predictor" if any(is_state_name(k) for k in keys) else
                     "full" if "query" in keys else "support_encoder")
        if graph not in GRAPH_FILES:
            raise InputError("graph", f"one of {list(GRAPH_FILES)}", repr(graph))
        if graph == "full" and "full" not in self._runners and "predictor" in self._runners:
            if "support" not in feed:
                raise InputError("feed", "the input 'support' (full-graph feed)", f"keys {sorted(feed)}")
            state = self._run_encoder(feed, check)
            return self._runner("predictor").infer(_inputs_of(self._runner("predictor"), {**feed, **state}), check)
        return self._runner(graph).infer(feed, check)

    def _run_encoder(self, feed: Mapping[str, Any], check: bool = True) -> dict[str, np.ndarray]:
        """The support encoder on the support inputs of ``feed`` (extra keys ignored) -> the support state."""
        runner = self._runner("support_encoder")
        return runner.infer(_inputs_of(runner, feed), check)

    # -- images in, keypoints out ------------------------------------------------------------------------
    def set_support(self, images: Any, keypoints: Any, visible: Any = None, skeleton: Any = None,
                    boxes: Any = None) -> SupportSet:
        """Set the category and its S support shots for the following ``predict`` calls.

        images: S (H, W, 3) uint8 RGB images (a list, an (S, H, W, 3) stack, or one image when S = 1);
        keypoints: (S, K_c, 2) or (S, K_c, 3) [x, y, v] in image pixels; visible: (S, K_c) flags (bool or
        COCO v; default: the third column of keypoints, else all visible); skeleton: (L, 2) 0-based pairs;
        boxes: (S, 4) [x, y, w, h] (default: each whole image). S must equal the engine's shots.
        """
        if not self.can_predict:
            raise EngineError(f"{self.path}: only the support encoder graph is loaded",
                              "pass the export folder or model.onnx to predict keypoints")
        support = prepare_support(images, keypoints, visible, skeleton, boxes, self.shots, self.input_size)
        if self.cached:
            support.state = self._run_encoder(support.batch(1, False), check=False)
        self._support = support  # one assignment: concurrent predicts see old or new, never a mix
        return support

    @property
    def support(self) -> SupportSet | None:
        return self._support

    def points(self, query_crops: Any, cached: bool | None = None) -> np.ndarray:
        """Preprocessed query crops (B, 3, H, W) f32 -> (B, K, 2) normalised crop points, with the current
        support. ``cached=False`` runs the full graph (support backbone on every call) when it exists."""
        return self._points(self._require_support(), query_crops, cached)

    def _points(self, support: SupportSet, query_crops: Any, cached: bool | None = None) -> np.ndarray:
        use_state = (self.cached if cached is None else cached) or "full" not in self._runners
        if use_state and support.state is None:
            support.state = self._run_encoder(support.batch(1, False), check=False)
        runner = self._runner("predictor" if use_state else "full")
        crops = as_host_array(query_crops, "query_crops")
        if crops.ndim != 4 or crops.shape[0] == 0:
            raise InputError("query_crops", f"(B, 3, {self.input_size}, {self.input_size}) float32 crops",
                             f"shape {tuple(crops.shape)}")
        out = []
        for start, stop, size in self.batch_chunks(crops.shape[0]):
            chunk = crops[start:stop]
            if size > stop - start:  # static or minimum batch: pad with the last query, drop afterwards
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], size - (stop - start), axis=0)])
            # only what this graph takes: an export drops inputs its model does not read (support_pos with
            # one layer, say)
            feed = _inputs_of(runner, {"query": chunk, **support.batch(size, use_state)})
            out.append(runner.infer(feed)["points"][: stop - start])
        return np.concatenate(out)

    def predict(self, query_images: Any, boxes: Any = None) -> np.ndarray:
        """Query images (one (H, W, 3) uint8 RGB image, a list, or a stack) and their boxes ((B, 4) [x, y, w,
        h], default the whole images) -> (B, K_c, 2) float32 keypoints in original image pixels (the official decode's dtype), for the
        support category's K_c real keypoints. FMMP predicts no confidence scores."""
        support = self._require_support()
        crops, centers, scales = prepare_queries(query_images, boxes, self.input_size)
        points = self._points(support, crops)  # the support read once: a concurrent set_support cannot mix in
        return decode_points(points, centers, scales, self.input_size)[:, : support.k_c]

    def _require_support(self) -> SupportSet:
        support = self._support
        if support is None:
            raise InputError("support", "set_support(images, keypoints, visible, skeleton, boxes) before predict",
                             "no support set", "call engine.set_support(...) once per category")
        return support

    def batch_chunks(self, n: int) -> list[tuple[int, int, int]]:
        """(start, stop, run size) pieces of a batch of n that fit the graphs' batch range; a run size
        above stop - start means the piece is padded (static or minimum batch)."""
        lo, hi = self.batch.lo, self.batch.hi or n
        pieces, start = [], 0
        while start < n:
            stop = min(n, start + hi)
            pieces.append((start, stop, max(lo, stop - start)))
            start = stop
        return pieces


def _inputs_of(runner: Runner, feed: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``feed`` that ``runner``'s graph takes (missing ones are left to its checks)."""
    names = [s.name for s in runner.inputs]
    return {k: feed[k] for k in names if k in feed}
