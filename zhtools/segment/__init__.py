"""Unsupervised word segmentation from adjacent impacts."""

from zhtools.segment.segmenter import Calibration, Segmenter, otsu_threshold, presplit

__all__ = ["Calibration", "Segmenter", "otsu_threshold", "presplit"]
