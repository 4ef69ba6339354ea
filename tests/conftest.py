"""Shared pytest setup: deterministic torch threads for a 2-core CI machine."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
