"""TensorRT's published ONNX operator support (onnx-tensorrt ``docs/operators.md``, TensorRT 10.x/11.x), as data.

Ops outside this set fail to parse unless a plugin of the same name is registered. Kept conservative:
an op is listed only where the parser supports it without a plugin.
"""

SUPPORTED = frozenset("""
Abs Acos Acosh Add AffineGrid And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Bernoulli
BlackmanWindow Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum
DeformConv DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample
GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If InstanceNormalization
IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LpNormalization LpPool LRN LSTM
MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1
ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu
Reshape Resize ReverseSequence RNN RoiAlign Round Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid
Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh
ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

# Tensor types TensorRT engines cannot hold at all.
UNSUPPORTED_TYPES = {"DOUBLE", "COMPLEX64", "COMPLEX128", "STRING", "UINT16", "UINT32", "UINT64"}

# Graph I/O types with no NumPy dtype: the runtime exchanges NumPy arrays, so it could not feed or read them.
NUMPYLESS_IO_TYPES = {"BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "INT4", "UINT4",
                      "FLOAT4E2M1"}

# Ops TensorRT parses that TensorRT-RTX 1.7's parser refuses (measured: tests/export/test_lint_vs_parser.py).
# TensorRT implements the first three with plugins from its plugin library, which TensorRT-RTX does not ship.
NOT_IN_TENSORRT_RTX = {
    "RoiAlign": "TensorRT-RTX has no ROIAlign plugin (TensorRT's parser imports RoiAlign as one)",
    "DeformConv": "TensorRT-RTX has no DeformConv plugin (TensorRT's parser imports DeformConv as one)",
    "MultiscaleDeformableAttnPlugin_TRT": "TensorRT's built-in plugin is not in TensorRT-RTX: export with "
                                          "--attention plugin (our plugin library) or portable",
    "Bernoulli": "TensorRT-RTX's parser refuses Bernoulli",
}
