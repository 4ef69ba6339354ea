"""`make demo`: the toolkit's main job end to end on the demo model, as the commands a user would type.

1. a synthetic CAPE benchmark in MP-100 format (generated, deterministic)
2. the demo checkpoint (shipped fmmp-tiny trained on it; retrained by one command if missing)
3. one PyTorch forward pass: keypoints and timing
4. PCK on held-out categories next to the copy-support baseline
5. export to ONNX in the three attention forms, each with its parity table
6. FP16 and INT8 graphs and their accuracy against FP32
7. runtime.bench: ONNX Runtime vs PyTorch eager, cached and uncached support; the plugin-form graph runs
   natively through libfgsa_ort_ops.so (`make ort-ops`, built by `make demo`) next to the portable one
8. runtime.predict on a held-out category (plugin-form graph): a PNG with the predicted keypoints
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

from fgsa.checkpoint import load_model
from fgsa.model.examples import random_inputs

OUT = Path("demo_out")
DATA = OUT / "synthetic"
SHIPPED_CKPT = Path("fgsa/assets/fmmp-tiny-demo.pth")
TRAINED_CKPT = OUT / "fmmp-tiny-demo.pth"


def step(title: str) -> None:
    print(f"\n{'=' * 100}\n== {title}\n{'=' * 100}", flush=True)


def run(*args: str) -> None:
    """Run one user-facing command, echoing it; stop the demo if it fails."""
    cmd = [sys.executable, "-m", *args]
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

    from kernels.ort_library import BUILD_HINT, find_library

    native = find_library()
    step("7. runtime.bench: ONNX Runtime vs PyTorch eager, with and without support caching")
    if native:
        print(f"plugin-form graphs run natively in ONNX Runtime: {native}")
    else:
        print(f"libfgsa_ort_ops.so not built: the plugin-form graph runs through the PyTorch reference op; {BUILD_HINT}")
    run("runtime.bench", "--engine", str(OUT / "onnx" / "portable"), "--compare", str(OUT / "onnx" / "plugin"),
        "--ckpt", str(ckpt), "--iterations", "10", "--out", str(OUT / "bench"))
    if native:
        run("export.sampling_bench", "--iterations", "15", "--out", str(OUT / "sampling_bench"))

    step("8. runtime.predict on a held-out category (the plugin-form graph" + (", natively)" if native else ")"))
    support, query, ann_file = held_out_pair(DATA)
    box = ",".join(f"{v:.1f}" for v in query.bbox)
    png = OUT / "predict.png"
    run("runtime.predict", "--engine", str(OUT / "onnx" / "plugin"), "--support", support.image_path,
        "--support-ann", ann_file, "--ann-id", str(support.ann_id), "--query", query.image_path,
        "--query-box", box, "--show-support", "--enlarge", "--out", str(png))
    print(f"\nprediction drawn on the held-out query: {png.resolve()}")


if __name__ == "__main__":
    main()
