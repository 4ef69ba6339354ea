"""fgsa-deploy runtime: FMMP inference on a TensorRT plan or ONNX graph behind one API, without torch.

    from runtime import Engine
    with Engine("out/onnx") as engine:
        engine.set_support(images, keypoints, visible, skeleton, boxes)
        keypoints_px = engine.predict(query_images, boxes)

CLIs: ``python -m runtime.predict``, ``python -m runtime.parity``, ``python -m runtime.bench``.
"""

from runtime.engine import Engine
from runtime.errors import EngineError, FgsaError, InputError

__all__ = ["Engine", "EngineError", "FgsaError", "InputError"]
