"""Compression of the exported student, kept only where the measured quality loss is within tolerance
(``worth_keeping``; the sequence student's pruning and int8 are ``offline.sequence_compress``'s).

Dynamic int8 quantisation (``onnxruntime.quantization.quantize_dynamic``: int8 weights, activations
quantised on the fly) of the student's ONNX graph. The quantised graph is scored on the same clicks
as the float one; it replaces the float graph only if NDCG@10 drops by at most ``tolerance``
(relative) *and* it scores at least ``min_speedup`` times faster -- a graph this small gains nothing
from being 8 KB smaller. The decision and both sets of figures are reported either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic

from offline.evaluate import ranking
from offline.export import OUTPUT_NAME, ms_per_1000
from offline.features import INPUT_NAMES, ContentTables
from offline.samples import TestClick
from serving.model import onnx_session
from stream.model_artifact import Manifest, sha256_file, write_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompressionResult:
    kept: bool
    ndcg_float: float
    ndcg_int8: float
    ms_float: float
    ms_int8: float
    bytes_float: int
    bytes_int8: int
    failed: str = ""  # why the int8 graph could not be made or scored, if it could not

    def as_dict(self) -> dict[str, float | bool]:
        return dict(self.__dict__)


def onnx_scorer(path: Path):
    sess = onnx_session(path)

    def score(inputs: dict[str, np.ndarray]) -> np.ndarray:
        return sess.run([OUTPUT_NAME], {n: np.ascontiguousarray(inputs[n]) for n in INPUT_NAMES})[0]

    return score


TOLERANCE = 0.01  # relative NDCG@10 a compression may lose
MIN_SPEEDUP = 1.1  # and how much faster it must score to be worth it


def worth_keeping(
    ndcg_before: float,
    ndcg_after: float,
    ms_before: float,
    ms_after: float,
    tolerance: float = TOLERANCE,
    min_speedup: float = MIN_SPEEDUP,
) -> bool:
    """A compression is kept when NDCG@10 drops by at most ``tolerance`` (relative) and it scores at
    least ``min_speedup`` times faster."""
    return ndcg_after >= ndcg_before * (1.0 - tolerance) and ms_before >= ms_after * min_speedup


def quantise_if_harmless(
    onnx_path: Path,
    clicks: list[TestClick],
    tables: ContentTables,
    rows: dict[str, np.ndarray],
    tolerance: float = TOLERANCE,
    min_speedup: float = MIN_SPEEDUP,
) -> CompressionResult:
    """Replace ``onnx_path`` by its int8 graph when that is harmless and faster (see above)."""
    return keep_int8_if_harmless(
        onnx_path,
        lambda path: ranking(onnx_scorer(path), clicks, tables)["ndcg@10"],
        lambda path: ms_per_1000(path, rows),
        tolerance,
        min_speedup,
    )


def keep_int8_if_harmless(
    onnx_path: Path,
    ndcg: Callable[[Path], float],
    ms: Callable[[Path], float],
    tolerance: float = TOLERANCE,
    min_speedup: float = MIN_SPEEDUP,
) -> CompressionResult:
    """Quantise the graph at ``onnx_path``; ``ndcg`` and ``ms`` score a graph file. The int8 graph
    replaces the float one only if ``worth_keeping``."""
    int8_path = onnx_path.with_suffix(".int8.onnx")
    ndcg_float, ms_float = ndcg(onnx_path), ms(onnx_path)
    try:
        with _quiet_quantiser():
            quantize_dynamic(str(onnx_path), str(int8_path), weight_type=QuantType.QInt8)
        ndcg_int8, ms_int8 = ndcg(int8_path), ms(int8_path)
    except Exception as exc:  # int8 is optional: any failure keeps the float graph
        log.warning("int8 quantisation failed (%s: %s); keeping the float graph", type(exc).__name__, exc)
        int8_path.unlink(missing_ok=True)
        return CompressionResult(False, ndcg_float, 0.0, ms_float, 0.0, onnx_path.stat().st_size, 0, repr(exc))
    result = CompressionResult(
        kept=worth_keeping(ndcg_float, ndcg_int8, ms_float, ms_int8, tolerance, min_speedup),
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


def mark_quantised(directory: Path, manifest: Manifest) -> Manifest:
    """Rewrite the staged manifest in ``directory`` for its int8 graph: the graph's new checksum, and
    ``extra.quantised``. Parity stays the float graph's against torch."""
    manifest = msgspec.structs.replace(
        manifest,
        onnx_sha256=sha256_file(directory / manifest.onnx_file),
        extra={**manifest.extra, "quantised": "int8-dynamic"},
    )
    write_manifest(directory, manifest)
    return manifest


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
