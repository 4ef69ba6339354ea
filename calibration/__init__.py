"""INT8 for TensorRT: calibration on real episodes, TensorRT-style Q/DQ, and an accuracy report with a budget.

| module | job |
|---|---|
| ``episodes`` | MP-100-format data -> prepared (supports, query) pairs and graph feeds |
| ``ranges`` | activation ranges (onnxruntime MinMax / Percentile / Entropy calibrators), JSON cache keyed by graph hash |
| ``graph`` | which layers INT8 may touch: Conv / constant-weight GEMMs off the keypoint-coordinate paths |
| ``qdq`` | Q/DQ insertion with onnxruntime's QDQQuantizer under TensorRT's rules, and the rule check |
| ``accuracy`` | run graphs on episodes in ONNX Runtime; PCK and pixel error vs FP32 |
| ``sensitivity`` | rank layer groups, send the worst back to float until INT8 fits the budget |
| ``report`` | ``python -m calibration.report``: FP32 / FP16 / INT8 table |
| ``__main__`` | ``python -m calibration``: fp32 graph -> INT8 graph |

See calibration/README.md.
"""
