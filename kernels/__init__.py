"""kernels: CUDA kernels of the two deformable-attention ops, their CPU reference and the TensorRT plugin.

Python here only builds and wraps the native code: :mod:`kernels.build` (CMake), :mod:`kernels.cpu_reference`
(ctypes wrapper of the CPU reference), :mod:`kernels.spec` (the plugin spec the exporter reads),
:mod:`kernels.torch_ext` (torch extension for GPU checks) and ``python -m kernels.tools.gpu_check``.
Importing this package imports nothing heavy.
"""
