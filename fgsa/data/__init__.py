"""Data in the MP-100 COCO format: reader (`mp100`), official splits (`mp100_splits`), seeded episodes
(`episodes`) and a synthetic CAPE benchmark generator (`synthetic`). Nothing here imports torch.

Submodules are imported explicitly, e.g. ``from fgsa.data.mp100 import load_mp100``.
"""
