"""Write a Triton model repository for ``runtime.Engine``: model ``fgsa_pose`` (Python backend), its graphs,
the support state of every category of the support set, config.pbtxt and a README.

Layout::

    REPO/README.md
    REPO/perf_analyzer_data.json              # perf_analyzer --input-data: the support set's own photos
    REPO/fgsa_pose/config.pbtxt
    REPO/fgsa_pose/1/model.py                 # Triton adapter around runtime.serving.pose.PoseModel
    REPO/fgsa_pose/1/engine.json              # which engine files, written by whom
    REPO/fgsa_pose/1/engine/...               # support_encoder + predictor (.onnx, or .plan with sidecars)
    REPO/fgsa_pose/1/lib/libfgsa_ort_ops.so   # plugin-form graphs on ONNX Runtime: the op library (SHA-256
                                              #   in engine.json, checked before it is loaded)
    REPO/fgsa_pose/1/support/index.json, <i>.npz   # per category: support state + keypoint inputs

The support states are computed here, once, with ``runtime.Engine`` (hence this lives in runtime/, not export/:
the pipeline imports never go upward), so a request pays for the query backbone and the predictor only.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fgsa.data.mp100 import load_mp100
from fgsa.plan_sidecar import file_sha256
from runtime.annotations import read_support_annotation
from runtime.draw import load_rgb
from runtime.engine import Engine, resolve_files
from runtime.errors import InputError
from runtime.serving.pose import Category, save_categories

MODEL = "fgsa_pose"
PERF_DATA = "perf_analyzer_data.json"
KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU", "auto": "KIND_AUTO"}


@dataclass
class RepositoryOptions:
    max_batch: int = 32
    preferred: tuple[int, ...] = (8, 16, 32)
    queue_delay_us: int = 2000
    #: None: on for GPU instances, off for CPU ones (measured on CPU: 2 ms more queue delay, no throughput)
    dynamic_batching: bool | None = None
    instances: int = 1
    kind: str = "cpu"
    backend: str = "auto"
    threads: int | None = None


def read_support_spec(path: str | Path) -> list[dict]:
    """The --support-set JSON: {"categories": [{"name": N, "shots": [{"image": P, "annotation": A,
    "ann_id": I?}, ...]}, ...]}; relative paths are relative to the spec file."""
    path = Path(path)
    field = f"--support-set {path}"
    try:
        spec = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(field, "a readable JSON file", str(exc)) from None
    except json.JSONDecodeError as exc:
        raise InputError(field, "valid JSON", f"a parse error at line {exc.lineno}: {exc.msg}") from None
    cats = spec.get("categories") if isinstance(spec, dict) else None
    if not isinstance(cats, list) or not cats:
        raise InputError(field, '{"categories": [{"name": ..., "shots": [{"image": ..., "annotation": ...}]}]}',
                         "no categories list", "see runtime/README.md, Serving with Triton")
    names = set()
    for i, cat in enumerate(cats):
        where = f"{field}: categories[{i}]"
        if not isinstance(cat, dict) or not isinstance(cat.get("name"), str) or not cat["name"]:
            raise InputError(where, "an object with a non-empty 'name'", repr(cat)[:80])
        if cat["name"] in names:
            raise InputError(where, "unique category names", f"{cat['name']!r} twice")
        names.add(cat["name"])
        shots = cat.get("shots")
        if not isinstance(shots, list) or not shots or not all(
                isinstance(s, dict) and "image" in s and "annotation" in s for s in shots):
            raise InputError(f"{where}.shots", "a list of {\"image\": path, \"annotation\": path, \"ann_id\": id?}",
                             repr(shots)[:80])
        for s in shots:
            for key in ("image", "annotation"):
                s[key] = str((path.parent / s[key]) if not Path(s[key]).is_absolute() else Path(s[key]))
    return cats


def compute_categories(engine: Engine, spec: list[dict]) -> list[Category]:
    """Each category's support state, computed with the engine that will serve it."""
    out = []
    for cat in spec:
        images = [load_rgb(s["image"], f"--support-set: {cat['name']} image") for s in cat["shots"]]
        anns = [read_support_annotation(s["annotation"], s.get("ann_id"), s["image"]) for s in cat["shots"]]
        if len({len(a.keypoints) for a in anns}) != 1:
            raise InputError(f"--support-set: {cat['name']}", "the same keypoint count in every shot",
                             sorted({len(a.keypoints) for a in anns}))
        boxes = [a.bbox or [0, 0, im.shape[1], im.shape[0]] for a, im in zip(anns, images)]
        support = engine.set_support(images, np.stack([a.keypoints for a in anns]), None, anns[0].skeleton, boxes)
        out.append(Category(cat["name"], support, cat.get("keypoint_names") or anns[0].names))
    return out


def _engine_files(path: Path, backend: str) -> list[Path]:
    """The graph files the repository needs (support encoder + predictor) and their sidecars."""
    kind, files = resolve_files(path, backend)
    if path.is_file() and files.keys() == {"predictor", "support_encoder"}:
        pass
    elif not {"support_encoder", "predictor"} <= files.keys():
        raise InputError("--engine", "an export folder with support_encoder + predictor (python -m export.onnx "
                         "--split), or their .plan files", f"{path} ({sorted(files)})",
                         "export with --split: serving uses the cached support state")
    picked = [files["support_encoder"], files["predictor"]]
    return picked + [p.with_name(p.name + ".json") for p in picked if p.with_name(p.name + ".json").is_file()]


def dynamic_batching(opts: RepositoryOptions) -> bool:
    return opts.kind != "cpu" if opts.dynamic_batching is None else opts.dynamic_batching


def config_pbtxt(opts: RepositoryOptions) -> str:
    batching = ""
    if dynamic_batching(opts):
        preferred = ", ".join(str(p) for p in opts.preferred if p <= opts.max_batch)
        batching = ("dynamic_batching {\n"
                    + (f"  preferred_batch_size: [ {preferred} ]\n" if preferred else "")
                    + f"  max_queue_delay_microseconds: {opts.queue_delay_us}\n}}\n")
    params = {"backend": opts.backend, "threads": "" if opts.threads is None else str(opts.threads)}
    param_text = "".join(f'parameters {{ key: "{k}" value {{ string_value: "{v}" }} }}\n' for k, v in params.items())
    return f'''name: "{MODEL}"
backend: "python"
max_batch_size: {opts.max_batch}
input [
  {{ name: "IMAGE" data_type: TYPE_UINT8 dims: [ -1, -1, -1 ] allow_ragged_batch: true }},
  {{ name: "BOX" data_type: TYPE_FP32 dims: [ 4 ] optional: true }},
  {{ name: "CATEGORY" data_type: TYPE_STRING dims: [ 1 ] }}
]
output [
  {{ name: "KEYPOINTS" data_type: TYPE_FP32 dims: [ -1, 2 ] }},
  {{ name: "KEYPOINT_NAMES" data_type: TYPE_STRING dims: [ -1 ] }}
]
{batching}instance_group [ {{ count: {opts.instances} kind: {KINDS[opts.kind]} }} ]
{param_text}'''


def perf_analyzer_data(spec: list[dict]) -> dict:
    """perf_analyzer's real-input JSON: one request per shot image of the support set, its file's bytes as
    IMAGE [1, 1, N] and its category (shapes without the batch axis; ``-b B`` repeats each row B times)."""
    data = []
    for cat in spec:
        for shot in cat["shots"]:
            raw = Path(shot["image"]).read_bytes()
            data.append({"IMAGE": {"content": list(raw), "shape": [1, 1, len(raw)]},
                         "CATEGORY": {"content": [cat["name"]], "shape": [1]}})
    return {"data": data}


def write_repository(engine_path: str | Path, support_set: str | Path, out: str | Path,
                     opts: RepositoryOptions | None = None) -> dict:
    """Write the repository; returns a summary (categories, files, sizes)."""
    opts = opts or RepositoryOptions()
    if opts.max_batch < 1 or opts.instances < 1 or opts.queue_delay_us < 0:
        raise InputError("--max-batch / --instances / --queue-delay-us", "max batch >= 1, instances >= 1, delay >= 0",
                         f"{opts.max_batch}, {opts.instances}, {opts.queue_delay_us}")
    if opts.kind not in KINDS:
        raise InputError("--kind", f"one of {sorted(KINDS)}", repr(opts.kind))
    engine_path, out = Path(engine_path), Path(out)
    spec = read_support_spec(support_set)
    files = _engine_files(engine_path, opts.backend)
    with Engine(engine_path, opts.backend, threads=opts.threads) as engine:
        categories = compute_categories(engine, spec)
        backend, native = engine.backend, engine.native_ops
        plugin_form = engine.metadata.get("attention") in ("plugin", "trt-builtin")
    if plugin_form and backend == "onnxruntime" and native is None:
        raise InputError("--engine", "portable graphs, or plugin-form graphs whose ops run in libfgsa_ort_ops.so "
                         "(the repository carries that library)", f"{engine_path}: plugin-form graphs that ran "
                         "through the PyTorch reference op here", "make ort-ops (or pass --ort-library), or "
                         "export with --attention portable")
    version = out / MODEL / "1"
    if version.exists():
        shutil.rmtree(version)
    (version / "engine").mkdir(parents=True)
    for f in files:
        shutil.copy2(f, version / "engine" / f.name)
    meta = {"engine": "engine", "backend_at_export": backend, "source": str(engine_path.resolve()),
            "files": [f.name for f in files]}
    if native is not None:  # the repository is served from anywhere: it carries the op library it was made with
        (version / "lib").mkdir()
        copied = Path(shutil.copy2(native, version / "lib" / Path(native).name))
        meta.update(ort_library=f"lib/{copied.name}", ort_library_sha256=file_sha256(copied))
    save_categories(version, categories)
    # the support set as read (absolute paths): runtime.parity --triton certifies the server against it
    (version / "support" / "spec.json").write_text(json.dumps({"categories": spec}, indent=1))
    (version / "engine.json").write_text(json.dumps(meta, indent=1))
    shutil.copy2(Path(__file__).with_name("triton_model.py"), version / "model.py")
    (out / MODEL / "config.pbtxt").write_text(config_pbtxt(opts))
    (out / PERF_DATA).write_text(json.dumps(perf_analyzer_data(spec)))
    cats = [{"name": c.name, "k_c": c.support.k_c, "keypoint_names": c.keypoint_names} for c in categories]
    (out / "README.md").write_text(readme_text(cats, opts, [f.name for f in files]))
    return {"repository": str(out), "categories": cats, "files": [f.name for f in files],
            "bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file())}


def readme_text(cats: list[dict], opts: RepositoryOptions, files: list[str]) -> str:
    rows = "\n".join(f"| `{c['name']}` | {c['k_c']} | {', '.join(c['keypoint_names'][:8])}"
                     f"{' ...' if len(c['keypoint_names']) > 8 else ''} |" for c in cats)
    return f"""# Triton model repository for fgsa-deploy (model `{MODEL}`)

Written by `python -m runtime.triton`. Graphs: {', '.join(f'`fgsa_pose/1/engine/{f}`' for f in files)};
support states of {len(cats)} categories in `fgsa_pose/1/support/` (computed at export time: a request runs the
query backbone and the predictor only).

## Serve
```bash
python -m runtime.serve --repository THIS_FOLDER            # 127.0.0.1, free ports printed; Ctrl-C stops
```
or with any Triton 2.4x+ that has the Python backend:
```bash
tritonserver --model-repository THIS_FOLDER --http-address 127.0.0.1 --grpc-address 127.0.0.1
```
The Python backend stub runs the model with the Python it was built for; that Python must have this project
installed (from its checkout: `make serve-venv`, or `pip install -e '.[serve]'`; torch not needed; the
package is not on any index) with numpy < 2 if the server is nvidia-pytriton's.
`runtime.serve` sets this up for the bundled server (stub of the running Python, its `lib` on
`LD_LIBRARY_PATH`, its `bin` first on `PATH`). On a GPU host with TensorRT plans, the plugin library is
found as `runtime.Engine` finds it: `FGSA_PLUGIN_LIBRARY=/path/libfgsa_trt_plugin.so` in the server's
environment (or this project's `build/`); never from the plan's sidecar.

## Measure it
`python -m runtime.serving.bench --url 127.0.0.1:8000 --grpc-url 127.0.0.1:8001 --repository THIS_FOLDER --clients 1,8 --protocol http,grpc`
(the project's bench against the running server), or Triton's own perf_analyzer with the support set's
photos as requests (`perf_analyzer_data.json`, written with this repository):
```bash
perf_analyzer -m {MODEL} -u 127.0.0.1:8000 --input-data THIS_FOLDER/{PERF_DATA} --concurrency-range 1:8 -b 2
```
(`pip install perf-analyzer`; its wheels from 2.58 on need glibc >= 2.38, e.g. Debian 13 / Ubuntu 24.04;
`-i grpc -u 127.0.0.1:8001` for gRPC.)

## Inputs (per request; batch axis first, B <= max_batch_size {opts.max_batch})
| name | type | shape | meaning |
|---|---|---|---|
| `IMAGE` | UINT8 | [B, H, W, 3] or [B, 1, 1, N] | RGB images of one size, or the bytes of B JPEG/PNG/BMP/WebP files (shorter files zero-padded to the longest N) |
| `BOX` | FP32 | [B, 4] | optional: object boxes x, y, w, h in image pixels (default: the whole images) |
| `CATEGORY` | BYTES | [B, 1] | per image, one of the categories below |

## Outputs
| name | type | shape | meaning |
|---|---|---|---|
| `KEYPOINTS` | FP32 | [B, K, 2] | x, y of each image's category's K_c keypoints in image pixels (FMMP has no scores); K is the largest K_c of the request, shorter rows padded with NaN |
| `KEYPOINT_NAMES` | BYTES | [B, K] | their names (padding: empty) |

Bad requests (unknown category, empty, undecodable or oversized image bytes, wrong shape or dtype, bad box,
missing input) get INVALID_ARG naming the input and what was expected; the other requests of the batch are
served.

## Categories
| name | K_c | keypoints |
|---|---|---|
{rows}

## Batching
max_batch_size {opts.max_batch}; dynamic batching {'on' if dynamic_batching(opts) else 'off'}
(preferred {list(opts.preferred)}, queue delay {opts.queue_delay_us} us); {opts.instances} instance(s), {opts.kind}.
Requests of different categories batched together run in one predictor execution, each row with its own
category's support state.
"""


def mp100_support_spec(ann_file: str | Path, split_file: str | Path | None = None, subset: str = "test",
                       shots: int = 1, limit: int | None = None) -> dict:
    """A --support-set dict from an MP-100-format set: the first ``shots`` instances of each category of
    ``subset`` (held-out categories by default), named by the category's name."""
    ann = load_mp100(ann_file, split_file=split_file, subset=subset) if split_file else load_mp100(ann_file)
    cats = []
    for cid in list(ann.class_ids)[:limit]:
        ids = ann.instances_by_category[cid][:shots]
        cats.append({"name": ann.categories[cid].name, "shots": [
            {"image": ann.instance(i).image_path, "annotation": str(Path(ann_file).resolve()), "ann_id": int(i)}
            for i in ids]})
    return {"categories": cats}
