"""Training FMMP with the official recipe (docs/FMMP_MODEL.md §5).

- ``loss``: the per-layer L1 loss with real / mixup weighting;
- ``schedule``: Adam learning rate, linear warmup by iteration and step decay by epoch;
- ``init``: the authors' parameter initialisation, and ImageNet backbone loading;
- ``trainer``: the loop, checkpoints with embedded config, exact resume;
- ``cli``: ``python -m fgsa.train``; ``demo_checkpoint``: the ``make demo`` model.
"""
