"""Reading and writing files that may come from anywhere (no torch): images with a pixel limit checked
from the header before decoding (:mod:`fgsa.files.images`), JSON with size and depth bounds and image
paths kept inside their folder (:mod:`fgsa.files.jsonfile`), and outputs that never write through a
symlink or half a result (:mod:`fgsa.files.outputs`).

Submodules are imported explicitly, e.g. ``from fgsa.files.images import read_image_rgb``.
"""
