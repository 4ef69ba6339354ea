"""Command-line tools of the kernels package (python -m kernels.tools.gpu_check)."""
