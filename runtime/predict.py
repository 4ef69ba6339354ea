"""``python -m runtime.predict``: keypoints of any category on your own query image, from S support shots.

    python -m runtime.predict --engine out/onnx --support support.jpg --support-ann support.json \\
        --query query.jpg [--query-box x,y,w,h] [--out query_pred.png] [--json query_pred.json]
    python -m runtime.predict ... --query photos/ --query 'more/*.jpg' [--query-ann coco.json] [--out out/predict]

``--support`` / ``--support-ann`` repeat once per shot (the engine's S). Images are checked before decoding
(pixel limit ``--max-image-pixels``, damaged files refused, see :mod:`fgsa.files.images`); the picture and
the JSON are written together or not at all, never through a symbolic link. The support JSON is the small
format of :mod:`runtime.annotations` (keypoints [x, y, v], skeleton, optional bbox) or an MP-100 / COCO
file with ``--ann-id``. Writes the query with the predicted keypoints and the skeleton drawn (PNG), and
prints the keypoints in query-image pixels. Several queries (repeat ``--query``, or a folder, or a glob) run
on one engine with one support: a picture each in the ``--out`` folder and one COCO results JSON
(``[{image_id, category_id, keypoints: [x, y, score] * K, score}]``, read by pycocotools' ``loadRes``).
``--query-ann`` (a COCO file of the queries) gives the boxes, draws the truth and prints each query's PCK
(the official protocol: ``fgsa.metrics.pck``). No torch needed.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fgsa.cli import command
from fgsa.errors import as_flag as _as_flag
from fgsa.files.images import DEFAULT_MAX_PIXELS, ENV_MAX_PIXELS
from fgsa.files.outputs import IMAGE_EXTENSIONS, check_output_path, write_files
from fgsa.metrics.pck import PCK_THRESHOLDS, PCKAccumulator
from runtime.annotations import read_support_annotation
from runtime.backends import CHOICES as BACKEND_CHOICES
from runtime.draw import draw_box, draw_pose, encode_image, enlarge, legend, load_rgb, side_by_side
from runtime.engine import Engine
from runtime.errors import InputError


def parse_box(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y,w,h numbers, got {text!r}") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"expected 4 numbers x,y,w,h, got {len(values)}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", required=True, type=Path, help="export folder, .onnx or .plan")
    p.add_argument("--backend", default="auto", choices=BACKEND_CHOICES)
    p.add_argument("--support", required=True, action="append", type=Path, help="support image (repeat per shot)")
    p.add_argument("--support-ann", required=True, action="append", type=Path,
                   help="support annotation JSON (repeat per shot, same order as --support)")
    p.add_argument("--ann-id", action="append", type=int, help="annotation id in an MP-100/COCO --support-ann")
    p.add_argument("--query", required=True, action="append", type=Path,
                   help="query image, a folder of images or a glob (quoted); repeatable: one engine, one support")
    p.add_argument("--query-box", type=parse_box,
                   help="x,y,w,h of the object in the one query (default: whole image); may start with a minus")
    p.add_argument("--query-ann", type=Path, default=None,
                   help="COCO / MP-100 file with the queries' annotations (matched by file name): their boxes, "
                        "the ground truth drawn in white and each query's PCK")
    p.add_argument("--out", type=Path, help="picture to write, .png/.jpg/.bmp/.webp (default: "
                   "out/predict/<query>_pred.png); with several queries a folder (default out/predict)")
    p.add_argument("--json", type=Path, help="also write the keypoints as JSON; with several queries the COCO "
                   "results file of all of them (default: <--out folder>/predictions.json)")
    p.add_argument("--show-support", action="store_true", help="put the annotated supports next to the query")
    p.add_argument("--enlarge", action="store_true", help="upscale small images (< 480 px) before drawing")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (>= 1)")
    p.add_argument("--plugin-library", type=Path, default=None,
                   help="libfgsa_trt_plugin.so for TensorRT plans (default: $FGSA_PLUGIN_LIBRARY, else build/; "
                        "never the plan's sidecar)")
    p.add_argument("--max-image-pixels", type=int, default=None,
                   help=f"refuse images with more pixels (default {DEFAULT_MAX_PIXELS:,}, or ${ENV_MAX_PIXELS})")
    p.add_argument("--ort-library", type=Path, default=None,
                   help="libfgsa_ort_ops.so for plugin-form graphs on ONNX Runtime (default: $FGSA_ORT_LIBRARY, build/)")
    return p


def _warn_far_keypoints(anns, images, files) -> None:
    """One warning line per shot whose visible keypoints lie outside its image (wrong file or pixels?)."""
    for a, im, f in zip(anns, images, files):
        h, w = im.shape[:2]
        kp = a.keypoints
        vis = kp[:, 2] > 0
        out = vis & ((kp[:, 0] < 0) | (kp[:, 0] > w) | (kp[:, 1] < 0) | (kp[:, 1] > h))
        if out.any():
            far = kp[out][np.argmax(np.abs(kp[out, :2] - [w / 2, h / 2]).max(1))]
            warnings.warn(f"--support-ann {f}: {int(out.sum())} visible keypoint(s) outside the {w} x {h} "
                          f"support image (farthest at ({far[0]:.0f}, {far[1]:.0f})); check that the "
                          "annotation belongs to this --support image", stacklevel=2)


def expand_queries(values: list[Path]) -> list[Path]:
    """``--query`` values -> image files: a file as it is, a folder's images (sorted), a glob's matches."""
    out: list[Path] = []
    for value in values:
        text = str(value)
        if any(c in text for c in "*?["):
            found = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not found:
                raise InputError("--query", "a pattern that matches image files", f"{text!r} matches none")
        elif value.is_dir():
            found = sorted(p for p in value.iterdir() if p.is_file() and p.suffix.lower() in QUERY_SUFFIXES)
            if not found:
                raise InputError("--query", f"a folder with images ({', '.join(QUERY_SUFFIXES)})",
                                 f"{value} (none in it)")
        else:
            found = [value]
        out += [p for p in found if p not in out]
    return out


def _out_names(queries: list[Path], folder: Path) -> list[Path]:
    """``<folder>/<stem>_pred.png`` per query; queries of one stem from several folders get -2, -3, ..."""
    seen: dict[str, int] = {}
    names = []
    for q in queries:
        n = seen[q.stem] = seen.get(q.stem, 0) + 1
        names.append(folder / (f"{q.stem}_pred.png" if n == 1 else f"{q.stem}-{n}_pred.png"))
    return names


@dataclass
class QueryAnnotations:
    """``--query-ann``: a COCO / MP-100 file with the queries' annotations, matched by file name."""

    by_name: dict[str, list]
    path: Path

    @classmethod
    def read(cls, path: Path | None, keypoints: int) -> "QueryAnnotations | None":
        if path is None:
            return None
        from fgsa.data.mp100 import load_mp100
        from fgsa.files.jsonfile import read_json

        ann = load_mp100(read_json(path, f"--query-ann {path}"), image_root=path.parent, check_image_paths=False,
                         source=f"--query-ann {path}")
        by_name: dict[str, list] = {}
        for inst in ann.instances:
            if inst.num_keypoints == keypoints:  # instances of the support's category (its keypoint count)
                by_name.setdefault(Path(inst.file_name).name, []).append(inst)
        if not by_name:
            raise InputError("--query-ann", f"annotations with {keypoints} keypoints (the support's category)",
                             f"none in {path}", "pass the annotation file of the query images")
        return cls(by_name, path)

    def of(self, query: Path) -> list:
        return self.by_name.get(query.name, [])


def run(args: argparse.Namespace) -> dict:
    if len(args.support) != len(args.support_ann):
        raise InputError("--support-ann", f"one annotation per --support image ({len(args.support)})",
                         len(args.support_ann))
    ann_ids = args.ann_id or [None] * len(args.support)
    if len(ann_ids) != len(args.support):
        raise InputError("--ann-id", f"one id per --support image ({len(args.support)})", len(ann_ids))
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads", "a thread count >= 1", args.threads, "leave it out for ONNX Runtime's default")
    if args.max_image_pixels is not None and args.max_image_pixels < 1:
        raise InputError("--max-image-pixels", "a positive number of pixels", args.max_image_pixels)
    queries = expand_queries(args.query)
    many = len(queries) > 1 or any(q.is_dir() or any(c in str(q) for c in "*?[") for q in args.query)
    if many and args.query_box:
        raise InputError("--query-box", "one --query image (a box belongs to one image)",
                         f"{len(queries)} query images", "drop --query-box, or pass --query-ann with their boxes")
    # outputs first: a path that cannot be written is reported before a minute of work, and nothing is
    # written unless everything can be
    if many:
        folder = args.out or DEFAULT_OUT
        if folder.suffix.lower() in IMAGE_EXTENSIONS:
            raise InputError("--out", "a folder for the pictures of several queries", str(folder),
                             "name a folder, e.g. out/predict")
        outs = _out_names(queries, folder)
        json_path = args.json or folder / "predictions.json"
    else:
        outs = [args.out or DEFAULT_OUT / f"{queries[0].stem}_pred.png"]
        json_path = args.json
    for out in outs:
        check_output_path(out, "--out", IMAGE_EXTENSIONS)
    if json_path:
        check_output_path(json_path, "--json")
    images = [load_rgb(p, "--support", args.max_image_pixels) for p in args.support]
    anns = [read_support_annotation(a, i, str(p)) for a, i, p in zip(args.support_ann, ann_ids, args.support)]
    k_c = {len(a.keypoints) for a in anns}
    if len(k_c) != 1:
        raise InputError("--support-ann", "the same category (keypoint count) for every shot", sorted(k_c))
    query_anns = QueryAnnotations.read(args.query_ann, len(anns[0].keypoints))
    _warn_far_keypoints(anns, images, args.support_ann)
    boxes = [a.bbox if a.bbox is not None else [0, 0, im.shape[1], im.shape[0]] for a, im in zip(anns, images)]
    shot_fields = {f"boxes[{i}]": f"--support-ann {a} bbox" for i, a in enumerate(args.support_ann)}
    shot_fields.update({f"images[{i}]": f"--support {p}" for i, p in enumerate(args.support)})
    shot_fields.update({"images": "--support", "keypoints": "--support-ann keypoints",
                        "keypoints (K_c, keypoints per shot)": "--support-ann keypoints",
                        "visible": "--support-ann keypoints (visibility)", "skeleton": "--support-ann skeleton"})
    try:
        engine = Engine(args.engine, args.backend, threads=args.threads, plugin_library=args.plugin_library,
                        ort_library=args.ort_library)
    except InputError as exc:
        raise _as_flag(exc, {"path": "--engine", "backend": "--backend", "threads": "--threads"}) from None
    skeleton = anns[0].skeleton.tolist()
    support_flags = np.stack([a.keypoints[:, 2] for a in anns])
    files: dict[Path, tuple[str, bytes]] = {}
    results, pck_all = [], PCKAccumulator()
    with engine:
        try:
            engine.set_support(images, np.stack([a.keypoints for a in anns]), None, anns[0].skeleton, boxes)
        except InputError as exc:
            raise _as_flag(exc, shot_fields) from None
        for n, (path, out) in enumerate(tqdm(list(zip(queries, outs)), desc="predict", disable=None if many else True,
                                             dynamic_ncols=True, leave=False)):
            query = load_rgb(path, f"--query {path}", args.max_image_pixels)
            truths = query_anns.of(path) if query_anns else []
            qboxes = [args.query_box] if args.query_box or not truths else [list(t.bbox) for t in truths]
            try:
                pixels = engine.predict([query] * len(qboxes), None if qboxes == [None] else qboxes)
            except InputError as exc:
                raise _as_flag(exc, {"boxes[0]": "--query-box", "boxes": "--query-box",
                                     "query_images[0]": f"--query {path}"}) from None
            canvas, f = (enlarge(query) if args.enlarge else (query, 1.0))
            rows = []
            for i, xy in enumerate(pixels):
                truth = truths[i] if i < len(truths) and not args.query_box else None
                pck = None
                if truth is not None:
                    canvas = draw_pose(canvas, truth.keypoints[:, :2] * f, skeleton, color=TRUTH_COLOR,
                                       thickness=0.6, mask=truth.visibility > 0)
                    k = min(len(xy), truth.num_keypoints)  # K_c < K when the skeleton leaves keypoints out
                    pck = pck_all.add(xy, truth.keypoints[:k], truth.visibility[:k], support_flags[:, :k],
                                      truth.clean_bbox)
                canvas = draw_pose(canvas, xy * f, skeleton, labels=True)
                if qboxes[i] is not None:
                    draw_box(canvas, np.asarray(qboxes[i]) * f)
                rows.append({"image_id": truth.image_id if truth else n + 1,
                             "category_id": truth.category_id if truth else (anns[0].category_id or 1),
                             "file_name": str(path), "keypoints": _coco_keypoints(xy), "score": 1.0,
                             **({} if truth is None else {"ann_id": truth.ann_id}),
                             **({} if pck is None else {"pck": dict(zip(PCK_NAMES, map(float, pck)))})})
            label = f"prediction: {pixels.shape[1]} keypoints ({engine.backend})"
            if truths and not args.query_box:
                label += ", white = --query-ann truth"
            canvas = legend(canvas, [(label, (255, 255, 255)), *name_lines(anns[0].names)])
            if args.show_support:
                canvas = side_by_side(*_support_panels(images, anns, boxes, skeleton, args.enlarge), canvas)
            files[out] = ("--out", encode_image(out, canvas))
            results.append({"query": str(path), "png": str(out), "pixels": pixels, "rows": rows})
        backend, attention, native = engine.backend, engine.metadata.get("attention"), engine.native_ops
    summary = {"queries": results, "names": anns[0].names, "skeleton": skeleton, "backend": backend,
               "attention": attention, "native_ops": native, "many": many,
               "pck": pck_all.result().as_dict() if len(pck_all) else None, "json": json_path}
    if many:
        coco = [row for r in results for row in r["rows"]]
        files[json_path] = ("--json", json.dumps(coco, indent=1).encode())
    elif json_path:
        first = results[0]
        files[json_path] = ("--json", json.dumps(_single_json(first, summary), indent=1).encode())
    write_files(files)
    return summary


#: the PCK thresholds' names, as fgsa.metrics reports them
PCK_NAMES = tuple(f"PCK@{t:g}" for t in PCK_THRESHOLDS)
TRUTH_COLOR = (255, 255, 255)
#: the default output folder: results never land next to the user's data unless asked
DEFAULT_OUT = Path("out/predict")
QUERY_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def name_lines(names: list[str], per_line: int = 6, most: int = 18) -> list[tuple[str, tuple[int, int, int]]]:
    """Legend lines naming the drawn indices ("0 head  1 neck ..."), for categories of at most ``most``
    keypoints (more would hide the picture under text)."""
    if not names or len(names) > most:
        return []
    items = [f"{i} {n}" for i, n in enumerate(names)]
    return [("  ".join(items[i:i + per_line]), (200, 200, 200)) for i in range(0, len(items), per_line)]


def _coco_keypoints(xy: np.ndarray) -> list[float]:
    """COCO results' flat [x, y, score] * K (FMMP predicts no confidence: 1.0, as the official decode)."""
    return [v for x, y in np.asarray(xy, np.float64).round(2).tolist() for v in (x, y, 1.0)]


def _single_json(result: dict, summary: dict) -> dict:
    return {"query": result["query"], "png": result["png"],
            "keypoints": result["pixels"][0].astype(np.float64).round(2).tolist(), "names": summary["names"],
            "skeleton": summary["skeleton"], "backend": summary["backend"], "attention": summary["attention"],
            "native_ops": summary["native_ops"], **({"pck": result["rows"][0]["pck"]}
                                                    if "pck" in result["rows"][0] else {})}


def _support_panels(images, anns, boxes, skeleton, enlarge_small: bool) -> list[np.ndarray]:
    panels = []
    for i, (img, a, box) in enumerate(zip(images, anns, boxes)):
        sup, f = (enlarge(img) if enlarge_small else (img, 1.0))
        sup = draw_pose(sup, a.keypoints[:, :2] * f, skeleton, labels=True, mask=a.keypoints[:, 2] > 0)
        draw_box(sup, np.asarray(box) * f)
        label = "support" if len(images) == 1 else f"support {i + 1}/{len(images)}"
        panels.append(legend(sup, [(label, (255, 255, 255))]))
    return panels


def _join_negative_boxes(argv: list[str]) -> list[str]:
    """``--query-box -20,10,5,5`` -> ``--query-box=-20,10,5,5``: argparse takes a value starting with a minus
    for an option unless it is joined with ``=``."""
    out, i = [], 0
    while i < len(argv):
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if argv[i] == "--query-box" and value[:1] == "-" and value[1:2] in tuple("0123456789."):
            out.append(f"--query-box={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_join_negative_boxes(list(sys.argv[1:] if argv is None else argv)))
    summary = run(args)
    names = summary["names"] or [str(i) for i in range(summary["queries"][0]["pixels"].shape[1])]
    if not summary["many"]:
        (result,) = summary["queries"]
        width = max(len(n) for n in names)
        for name, (x, y) in zip(names, result["pixels"][0].tolist()):
            print(f"{name:>{width}}: ({x:8.2f}, {y:8.2f})")
        if "pck" in result["rows"][0]:
            print("  ".join(f"{k} {100 * v:.1f}%" for k, v in result["rows"][0]["pck"].items()))
    else:
        width = max(len(Path(r["query"]).name) for r in summary["queries"])
        for r in summary["queries"]:
            pcks = [row["pck"]["PCK@0.1"] for row in r["rows"] if "pck" in row]
            said = f", PCK@0.1 {100 * float(np.mean(pcks)):.1f}%" if pcks else ""
            print(f"{Path(r['query']).name:>{width}}: {len(r['rows'])} instance(s), {r['pixels'].shape[1]} "
                  f"keypoints{said} -> {r['png']}")
    if summary["pck"]:
        print("all queries: " + "  ".join(f"{k} {100 * v:.1f}%" for k, v in summary["pck"].items()))
    if summary["native_ops"]:
        print(f"{summary['attention']} graph on {summary['backend']}: plugin ops ran natively in "
              f"{summary['native_ops']}")
    wrote = [r["png"] for r in summary["queries"]] if not summary["many"] else \
        [f"{len(summary['queries'])} pictures in {Path(summary['queries'][0]['png']).parent}"]
    print("wrote " + ", ".join(map(str, wrote)) + (f" and {summary['json']}" if summary["json"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
