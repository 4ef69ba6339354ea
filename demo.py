"""`make demo`: the toolkit's main job end to end on the demo model, as the commands a user would type.

1. a synthetic CAPE benchmark in MP-100 format (generated, deterministic)
2. the demo checkpoint (shipped fmmp-tiny trained on it; retrained by one command if missing)
3. one PyTorch forward pass: keypoints and timing
4. PCK on held-out categories next to the copy-support baseline
5. export to ONNX in the three attention forms, each with its parity table
6. FP16 and INT8 graphs and their accuracy against FP32
7. a TensorRT-RTX plan from the FP16 portable graph, built ahead of time without a GPU: size and build time
8. runtime.bench: ONNX Runtime vs PyTorch eager, cached and uncached support; the plugin-form graph runs
   natively through libfgsa_ort_ops.so (`make ort-ops`, built by `make demo`) next to the portable one
9. runtime.predict on a held-out category (plugin-form graph): a PNG with the predicted keypoints, and a grid
   of several held-out categories' queries with their PCK, so the picture shows the typical result, not one draw
10. calibration.drift: FP16 / INT8 against FP32 tensor by tensor (Polygraphy), top rows and the plot
11. Triton Inference Server: a model repository for two held-out categories, one request each (serving env)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from fgsa.checkpoint import load_model
from fgsa.model.examples import random_inputs
from kernels.ort_library import BUILD_HINT, find_library

START = time.perf_counter()
OUT = Path("demo_out")
DATA = OUT / "synthetic"
SHIPPED_CKPT = Path("fgsa/assets/fmmp-tiny-demo.pth")
TRAINED_CKPT = OUT / "fmmp-tiny-demo.pth"


def step(title: str) -> None:
    print(f"\n{'=' * 100}\n== {title}\n{'=' * 100}", flush=True)


def run(*args: str, python: str = sys.executable) -> None:
    """Run one user-facing command, echoing it; stop the demo if it fails."""
    cmd = [python, "-m", *args]
    print("$ python -m " + " ".join(shlex.quote(a) for a in args), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        sys.exit(f"demo: `{' '.join(args[:1])}` failed with exit code {proc.returncode}")
    print(f"({time.perf_counter() - t0:.1f} s)", flush=True)


def forward_once(ckpt: Path) -> None:
    model = load_model(ckpt)
    inputs = random_inputs(model.cfg, batch=1, shots=1, seed=0)
    with torch.inference_mode():
        model(**inputs)  # warm-up
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            points = model(**inputs)
            times.append(time.perf_counter() - t0)
    print(f"{model.cfg.name}: {sum(p.numel() for p in model.parameters()):,} parameters; per-layer points "
          f"{tuple(points.shape)}; median of 5 forwards (B=1, S=1): {sorted(times)[2] * 1e3:.1f} ms "
          f"on {torch.get_num_threads()} CPU threads")
    size = model.cfg.input_size
    print("first 5 keypoints of the last layer, (x, y) in crop pixels:",
          ", ".join(f"({x * size:.1f}, {y * size:.1f})" for x, y in points[-1, 0, :5].tolist()))


def held_out_pair(data: Path) -> tuple[dict, dict, str]:
    """A support and a query instance of the first held-out category (-> support, query, annotation file)."""
    from fgsa.data.mp100 import load_mp100

    ann_file = data / "annotations" / "synthetic_all.json"
    ann = load_mp100(ann_file, split_file=data / "annotations" / "splits.json", subset="test")
    category = ann.class_ids[0]
    support, query = (ann.instance(i) for i in ann.instances_by_category[category][:2])
    return support, query, str(ann_file)


def prediction_grid(engine_dir: Path, data: Path, out: Path, categories: int = 4, queries: int = 2) -> Path:
    """The first ``queries`` queries of the first ``categories`` held-out categories, each predicted from the
    category's first instance as support, drawn with its PCK@0.1 and tiled into one PNG."""
    import numpy as np

    from fgsa.data.mp100 import load_image_rgb, load_mp100
    from fgsa.metrics.pck import PCKAccumulator
    from runtime import Engine
    from runtime.draw import draw_pose, enlarge, grid, legend, save_png

    ann = load_mp100(data / "annotations" / "synthetic_all.json", split_file=data / "annotations" / "splits.json",
                     subset="test")
    tiles, total = [], PCKAccumulator(thresholds=(0.1,))
    with Engine(engine_dir) as engine:
        for cid in ann.class_ids[:categories]:
            cat = ann.categories[cid]
            sup, *rest = (ann.instance(i) for i in ann.instances_by_category[cid][: queries + 1])
            kp = np.concatenate([sup.keypoints, sup.visibility[:, None]], 1).astype(np.float64)
            engine.set_support([load_image_rgb(sup.image_path)], kp[None], None, cat.skeleton, [sup.bbox])
            for q in rest:
                img = load_image_rgb(q.image_path)
                pred = engine.predict(img, q.bbox)[0]
                k = q.num_keypoints
                pck = total.add(pred, q.keypoints[:k].astype(np.float64), q.visibility, sup.visibility[None],
                                q.clean_bbox, cid)[0]
                canvas, f = enlarge(img, 240)
                canvas = draw_pose(canvas, q.keypoints[:, :2] * f, cat.skeleton, color=(255, 255, 255),
                                   thickness=0.6, mask=q.visibility > 0)
                canvas = draw_pose(canvas, pred * f, cat.skeleton)
                tiles.append(legend(canvas, [(f"{cat.name}: PCK@0.1 {100 * pck:.0f}%", (255, 255, 255))]))
    picture = legend(grid(tiles, queries * 2), [(f"{len(tiles)} held-out queries, colour = prediction, white = "
                                                 f"truth; mean PCK@0.1 {100 * total.result().mpck:.1f}%",
                                                 (255, 255, 255))])
    return save_png(out, picture)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, help="use this checkpoint instead of the demo one")
    parser.add_argument("--episodes", type=int, default=3, help="evaluation episodes per held-out category")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)

    step("1. synthetic CAPE benchmark (MP-100 format)")
    if (DATA / "annotations" / "synthetic_all.json").is_file():
        print(f"{DATA} exists")
    else:
        run("fgsa.data.synthetic", "--out", str(DATA))

    step("2. demo checkpoint")
    ckpt = args.ckpt or (SHIPPED_CKPT if SHIPPED_CKPT.is_file() else TRAINED_CKPT)
    if not ckpt.is_file():
        run("fgsa.train.demo_checkpoint", "--out", str(TRAINED_CKPT), "--data", str(DATA))
    print(f"checkpoint: {ckpt}")
    if ckpt != args.ckpt:
        print("note: the demo model knows only the synthetic shapes (it scores below copying the support on real "
              "photos); README.md, 'The demo model and the authors' trained one', says how to use the authors' "
              "checkpoint")

    step("3. PyTorch forward pass")
    forward_once(ckpt)

    step("4. PCK on held-out categories vs the copy-support baseline")
    run("fgsa.evaluate", "--ckpt", str(ckpt), "--data", str(DATA), "--split", "test",
        "--episodes", str(args.episodes), "--queries", "5", "--no-progress")

    step("5. export to ONNX in the three attention forms, each checked against PyTorch")
    for form in ("plugin", "trt-builtin", "portable"):
        extra = ["--split"] if form in ("plugin", "portable") else []
        run("export.onnx", "--ckpt", str(ckpt), "--attention", form, "--out", str(OUT / "onnx" / form), *extra)

    step("6. FP16 and INT8 graphs: accuracy against FP32 on held-out episodes")
    run("calibration.report", "--ckpt", str(ckpt), "--data", str(DATA), "--out", str(OUT / "precision"))

    step("7. TensorRT-RTX plan from the FP16 portable graph, built ahead of time (no GPU needed)")
    if importlib.util.find_spec("tensorrt_rtx") is None:
        print("skipped: TensorRT-RTX is not installed (pip install -e '.[rtx]'; make demo installs it)")
    else:
        fp16 = OUT / "onnx" / "portable-fp16"
        run("export.onnx", "--ckpt", str(ckpt), "--attention", "portable", "--precision", "fp16", "--out", str(fp16))
        run("export.trt", "--onnx", str(fp16 / "model.onnx"), "--fp16", "--target", "tensorrt-rtx",
            "--out", str(OUT / "trt-rtx" / "model_fp16.plan"))

    native = find_library()
    step("8. runtime.bench: ONNX Runtime vs PyTorch eager, with and without support caching")
    if native:
        print(f"plugin-form graphs run natively in ONNX Runtime: {native}")
    else:
        print(f"libfgsa_ort_ops.so not built: the plugin-form graph runs through the PyTorch reference op; {BUILD_HINT}")
    run("runtime.bench", "--engine", str(OUT / "onnx" / "portable"), "--compare", str(OUT / "onnx" / "plugin"),
        "--ckpt", str(ckpt), "--iterations", "10", "--out", str(OUT / "bench"))
    if native:
        run("export.sampling_bench", "--iterations", "15", "--out", str(OUT / "sampling_bench"))

    step("9. runtime.predict on a held-out category (the plugin-form graph" + (", natively)" if native else ")"))
    support, query, ann_file = held_out_pair(DATA)
    box = ",".join(f"{v:.1f}" for v in query.bbox)
    png = OUT / "predict.png"
    run("runtime.predict", "--engine", str(OUT / "onnx" / "plugin"), "--support", support.image_path,
        "--support-ann", ann_file, "--ann-id", str(support.ann_id), "--query", query.image_path,
        "--query-box", box, "--show-support", "--enlarge", "--out", str(png))
    print(f"\nprediction drawn on the held-out query, inside its annotated box (--query-box): {png.resolve()}")
    grid_png = prediction_grid(OUT / "onnx" / "portable", DATA, OUT / "predict_grid.png")
    print(f"typical results, several held-out categories with their PCK (each query in its annotated box): "
          f"{grid_png.resolve()}")

    step("10. calibration.drift: which tensor of the FP16 / INT8 graphs drifts first (Polygraphy, layer by layer)")
    run("calibration.drift", "--ckpt", str(ckpt), "--data", str(DATA), "--out", str(OUT / "drift"), "--quiet")

    step("11. Triton Inference Server: repository for two held-out categories, one request each, and the "
         "served keypoints certified against PyTorch and the in-process Engine")
    triton(DATA, ckpt)

    step("12. what the demo made")
    artifacts(OUT)
    print(f"\nmake demo: every step passed in {time.perf_counter() - START:.0f} s")


#: what each kind of artifact is, for the closing list
ARTIFACTS = {".md": "report", ".json": "report data", ".png": "picture", ".onnx": "ONNX graph", ".plan": "plan",
             ".pth": "checkpoint", ".pbtxt": "Triton config"}


def artifacts(out: Path) -> None:
    """Every artifact under ``out`` with its path (the synthetic images and the repository internals left out)."""
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if not path.is_file() or rel.parts[0] == "synthetic" or path.suffix not in ARTIFACTS:
            continue
        if "support" in rel.parts or path.name in ("engine.json", "export.json") or "engine" in rel.parts[:-1]:
            if path.suffix not in (".onnx", ".plan"):
                continue
        print(f"{ARTIFACTS[path.suffix]:>13}: {path} ({path.stat().st_size / 1e6:.2f} MB)")


def triton(data: Path, ckpt: Path) -> None:
    """runtime.triton + runtime.serve in the serving environment (numpy < 2 for the bundled tritonserver)."""
    from fgsa.data.mp100 import load_mp100
    from runtime.serving.repository import mp100_support_spec

    python = os.environ.get("FGSA_SERVE_PYTHON", ".venv-serve/bin/python")
    if not Path(python).is_file():
        print(f"skipped: no serving environment at {python} (make serve-venv)")
        return
    ann_file, split_file = data / "annotations" / "synthetic_all.json", data / "annotations" / "splits.json"
    spec = mp100_support_spec(ann_file, split_file, shots=1, limit=2)
    spec_file = OUT / "triton_support.json"
    spec_file.write_text(json.dumps(spec, indent=1))
    repo = OUT / "triton"
    run("runtime.triton", "--engine", str(OUT / "onnx" / "portable"), "--support-set", str(spec_file),
        "--out", str(repo), "--threads", "2", python=python)
    ann = load_mp100(ann_file, split_file=split_file, subset="test")
    requests = []
    for cid in list(ann.class_ids)[:2]:  # a query that is not the support shot of its category
        query = ann.instance(ann.instances_by_category[cid][1])
        requests += ["--request", f"{query.image_path}={ann.categories[cid].name}"]
    print("the requests send the whole query image (no BOX), unlike step 9's --query-box: other keypoints")
    run("runtime.serve", "--repository", str(repo), *requests, python=python)
    served_parity(repo, data, python, ckpt)


def served_parity(repo: Path, data: Path, python: str, ckpt: Path) -> None:
    """runtime.serve in the background (serving environment), runtime.parity --triton against it from here."""
    from runtime.serving.server import free_port

    http, grpc = free_port(), free_port()
    cmd = [python, "-m", "runtime.serve", "--repository", str(repo), "--http-port", str(http),
           "--grpc-port", str(grpc)]
    print("$ python -m " + " ".join(shlex.quote(a) for a in cmd[2:]) + " &", flush=True)
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # "ready: ..." once the model is loaded (the command waits for it)
        if not line.startswith("ready"):
            sys.exit(f"demo: runtime.serve did not start: {line.strip()}")
        run("runtime.parity", "--ckpt", str(ckpt), "--triton", f"127.0.0.1:{http}", "--repository", str(repo),
            "--data", str(data), "--queries", "3", "--out", str(OUT / "parity-served"))
        result = json.loads((OUT / "parity-served" / "parity.json").read_text())
        d = result["differences_px"]
        print(f"served vs in-process: max {d['served_vs_in_process']['max_px']:.2e} px; served vs PyTorch: max "
              f"{d['served_vs_pytorch']['max_px']:.2e} px over {d['served_vs_pytorch']['keypoints']} keypoints "
              f"({result['verdict']})")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)


if __name__ == "__main__":
    main()
