"""Evaluation metrics (NumPy only): PCK / mPCK of the official MP-100 protocol."""

from fgsa.metrics.pck import (PCK_THRESHOLDS, PCKAccumulator, PCKResult, bbox_normalizer, compute_pck,
                              format_pck_table, pck_mask, pck_per_image)

__all__ = ["PCK_THRESHOLDS", "PCKAccumulator", "PCKResult", "bbox_normalizer", "compute_pck",
           "format_pck_table", "pck_mask", "pck_per_image"]
