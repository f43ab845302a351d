"""offline.compress: int8 replaces the float graph only when it is harmless and faster.

* the int8 graph is kept (and replaces the float file) when the NDCG it loses is within the
  tolerance and it is fast enough; otherwise the float graph stays byte for byte;
* either way both sets of figures are reported;
* the quantiser's expected warnings about int64 id inputs are dropped, other log records pass.
"""

from __future__ import annotations

import logging

import pytest

from offline.compress import _quiet_quantiser, quantise_if_harmless
from offline.export import export_onnx
from offline.features import ContentTables
from offline.pipeline import model_sizes
from offline.samples import build_dataset
from offline.student import Student
from stream.model_artifact import sha256_file
from stream.sources.synthetic import SyntheticConfig, synthetic_events


@pytest.fixture(scope="module")
def world():
    ds = build_dataset(synthetic_events(SyntheticConfig(n_users=80, n_items=60, n_sessions=400)))
    tables = ContentTables(ds.catalogue)
    rows = tables.arrays(ds.test.user[:200], ds.test.item[:200], ds.test.recent[:200])
    return ds, tables, rows


def _exported(tmp_path, world):
    ds, _, rows = world
    path = tmp_path / "student.onnx"
    export_onnx(Student(*model_sizes(ds)).eval(), path, rows)
    return path


def test_int8_is_kept_when_within_tolerance_and_fast_enough(tmp_path, world):
    ds, tables, rows = world
    path = _exported(tmp_path, world)
    before = sha256_file(path)
    result = quantise_if_harmless(path, ds.test_clicks[:40], tables, rows, tolerance=1.0, min_speedup=0.0)
    assert result.kept
    assert sha256_file(path) != before and path.stat().st_size == result.bytes_int8 < result.bytes_float
    assert not path.with_suffix(".int8.onnx").exists()


def test_the_float_graph_stays_when_int8_is_not_fast_enough(tmp_path, world):
    ds, tables, rows = world
    path = _exported(tmp_path, world)
    before = sha256_file(path)
    result = quantise_if_harmless(path, ds.test_clicks[:40], tables, rows, tolerance=1.0, min_speedup=1e6)
    assert not result.kept
    assert sha256_file(path) == before
    assert result.ms_int8 > 0 and result.ms_float > 0 and 0 <= result.ndcg_int8 <= 1
    assert not path.with_suffix(".int8.onnx").exists()


def test_only_the_quantisers_expected_warnings_are_dropped(caplog):
    # The quantiser logs on the root logger, so the test does too.
    with caplog.at_level(logging.WARNING), _quiet_quantiser():
        logging.warning("Inference failed or unsupported type to quantize for tensor 'recent', type is ...")  # noqa: LOG015
        logging.warning("Please consider to run pre-processing before quantization.")  # noqa: LOG015
        logging.warning("something else went wrong")  # noqa: LOG015
    assert [r.getMessage() for r in caplog.records] == ["something else went wrong"]
