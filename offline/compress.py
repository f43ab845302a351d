"""Compression of the exported student, kept only where the measured quality loss is within tolerance.

Dynamic int8 quantisation (``onnxruntime.quantization.quantize_dynamic``: int8 weights, activations
quantised on the fly) of the student's ONNX graph. The quantised graph is scored on the same clicks
as the float one; it replaces the float graph only if NDCG@10 drops by at most ``tolerance``
(relative) *and* it scores at least ``min_speedup`` times faster -- a graph this small gains nothing
from being 8 KB smaller. The decision and both sets of figures are reported either way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic

from offline.evaluate import ranking
from offline.export import OUTPUT_NAME, ms_per_1000
from offline.features import INPUT_NAMES, ContentTables
from offline.samples import TestClick
from serving.model import onnx_session


@dataclass(frozen=True)
class CompressionResult:
    kept: bool
    ndcg_float: float
    ndcg_int8: float
    ms_float: float
    ms_int8: float
    bytes_float: int
    bytes_int8: int

    def as_dict(self) -> dict[str, float | bool]:
        return dict(self.__dict__)


def onnx_scorer(path: Path):
    sess = onnx_session(path)

    def score(inputs: dict[str, np.ndarray]) -> np.ndarray:
        return sess.run([OUTPUT_NAME], {n: np.ascontiguousarray(inputs[n]) for n in INPUT_NAMES})[0]

    return score


def quantise_if_harmless(
    onnx_path: Path,
    clicks: list[TestClick],
    tables: ContentTables,
    rows: dict[str, np.ndarray],
    tolerance: float = 0.01,
    min_speedup: float = 1.1,
) -> CompressionResult:
    """Replace ``onnx_path`` by its int8 graph when that is harmless and faster (see above)."""
    int8_path = onnx_path.with_suffix(".int8.onnx")
    with _quiet_quantiser():
        quantize_dynamic(str(onnx_path), str(int8_path), weight_type=QuantType.QInt8)
    ndcg_float = ranking(onnx_scorer(onnx_path), clicks, tables)["ndcg@10"]
    ndcg_int8 = ranking(onnx_scorer(int8_path), clicks, tables)["ndcg@10"]
    ms_float, ms_int8 = ms_per_1000(onnx_path, rows), ms_per_1000(int8_path, rows)
    result = CompressionResult(
        kept=ndcg_int8 >= ndcg_float * (1.0 - tolerance) and ms_float >= ms_int8 * min_speedup,
        ndcg_float=ndcg_float,
        ndcg_int8=ndcg_int8,
        ms_float=ms_float,
        ms_int8=ms_int8,
        bytes_float=onnx_path.stat().st_size,
        bytes_int8=int8_path.stat().st_size,
    )
    if result.kept:
        int8_path.replace(onnx_path)
    else:
        int8_path.unlink()
    return result


@contextmanager
def _quiet_quantiser() -> Iterator[None]:
    """Drop the quantiser's expected warnings from the root logger: our int64 id inputs are not
    quantisable (it logs each with its full type proto) and it suggests a pre-processing pass for
    shape inference that a graph with fixed feature widths does not need. Other records pass."""
    expected = ("Inference failed or unsupported type to quantize", "Please consider to run pre-processing")

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(expected)

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)
