"""``python -m runtime.triton``: write a Triton Inference Server model repository for an exported FMMP.

    python -m runtime.triton --engine out/onnx --support-set support.json --out triton_repo \\
        [--max-batch 32] [--preferred 8,16,32] [--queue-delay-us 2000] [--[no-]dynamic-batching] \\
        [--instances 1] [--kind cpu|gpu|auto] [--backend auto|onnxruntime|tensorrt] [--threads N]

``--engine``: an export folder with split graphs (``python -m export.onnx --split``) or their ``.plan`` files.
``--support-set``: JSON ``{"categories": [{"name": ..., "shots": [{"image": ..., "annotation": ...,
"ann_id": ...}]}]}`` (annotation: the small support JSON of runtime.predict, or an MP-100/COCO file with
``ann_id``). Each category's support state is computed here, once, and stored in the repository.
It lives in runtime/ (not export/) because computing support states runs ``runtime.Engine``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from fgsa.cli import command
from runtime.backends import CHOICES as BACKEND_CHOICES
from runtime.serving.repository import RepositoryOptions, write_repository


def serving_python() -> str:
    """The Python that can serve the repository: this one when it has the server (nvidia-pytriton), else the
    checkout's serving environment (make serve-venv: the server needs numpy < 2, apart from torch)."""
    if importlib.util.find_spec("pytriton") is not None:
        return sys.executable
    serve = Path(__file__).resolve().parents[1] / ".venv-serve" / "bin" / "python"
    return str(serve) if serve.exists() else f"{serve} (make serve-venv first)"


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of batch sizes, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.triton", description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", required=True, type=Path, help="export folder (split graphs) or predictor .plan")
    p.add_argument("--support-set", required=True, type=Path, help="support set JSON (categories and shots)")
    p.add_argument("--out", required=True, type=Path, help="model repository folder to write")
    d = RepositoryOptions()
    p.add_argument("--max-batch", type=int, default=d.max_batch, help="max_batch_size")
    p.add_argument("--preferred", type=_sizes, default=d.preferred, help="preferred batch sizes, e.g. 8,16,32")
    p.add_argument("--queue-delay-us", type=int, default=d.queue_delay_us, help="max queue delay (microseconds)")
    batching = p.add_mutually_exclusive_group()
    batching.add_argument("--dynamic-batching", dest="dynamic_batching", action="store_true", default=None,
                          help="batch requests on the server (default: on for --kind gpu/auto, off for cpu, where "
                               "it measured no gain and 2 ms more latency)")
    batching.add_argument("--no-dynamic-batching", dest="dynamic_batching", action="store_false",
                          help="one request per execution")
    p.set_defaults(dynamic_batching=None)
    p.add_argument("--instances", type=int, default=d.instances, help="model instances")
    p.add_argument("--kind", default=d.kind, choices=("cpu", "gpu", "auto"), help="instance kind")
    p.add_argument("--backend", default=d.backend, choices=BACKEND_CHOICES)
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per instance")
    return p


@command(one_line=False)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    opts = RepositoryOptions(max_batch=args.max_batch, preferred=args.preferred, queue_delay_us=args.queue_delay_us,
                             dynamic_batching=args.dynamic_batching, instances=args.instances, kind=args.kind,
                             backend=args.backend, threads=args.threads)
    summary = write_repository(args.engine, args.support_set, args.out, opts)
    cats = ", ".join(f"{c['name']} ({c['k_c']} keypoints)" for c in summary["categories"])
    print(f"wrote {summary['repository']} ({summary['bytes'] / 1e6:.1f} MB): model fgsa_pose, categories {cats}")
    print(f"serve it: {serving_python()} -m runtime.serve --repository {summary['repository']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
