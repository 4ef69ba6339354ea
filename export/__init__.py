"""export: torch -> ONNX in three attention forms (``python -m export.onnx``), precision passes and lint."""
