"""fgsa: the FMMP category-agnostic pose model (PyTorch), its checkpoints, data and pre/post-processing.

Every other package of fgsa-deploy (export, kernels, calibration, runtime) builds on this one.
Submodules are imported explicitly (``fgsa.model``, ``fgsa.preprocess``...) so that the runtime can use
``fgsa.preprocess`` without importing torch.
"""

__version__ = "0.1.0"
