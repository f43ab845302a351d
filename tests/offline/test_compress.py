"""offline.compress: int8 replaces the float graph only when it is harmless and faster.

* the int8 graph is kept (and replaces the float file) when the NDCG it loses is within the
  tolerance and it is fast enough; otherwise the float graph stays byte for byte;
* either way both sets of figures are reported, and they are the measured ones;
* the quantiser's expected warnings about int64 id inputs are dropped, other log records pass.

The decision is tested on fixed figures put in place of the measurements (``ranking``,
``onnx_scorer`` and the clock-based ``ms_per_1000`` as ``offline.compress`` calls them); the real
quantisation and file handling run underneath.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import onnx
import pytest
import torch

import offline.compress as compress
from offline.compress import _quiet_quantiser, onnx_scorer, quantise_if_harmless
from offline.evaluate import ranking
from offline.export import export_onnx, ms_per_1000
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


@pytest.fixture(scope="module")
def float_graph(world, tmp_path_factory):
    ds, _, rows = world
    path = tmp_path_factory.mktemp("float") / "student.onnx"
    torch.manual_seed(0)
    export_onnx(Student(*model_sizes(ds)).eval(), path, rows)
    return path


@pytest.fixture
def graph(tmp_path, float_graph):
    return shutil.copyfile(float_graph, tmp_path / "student.onnx")


def is_int8(path) -> bool:
    return any(node.op_type == "DynamicQuantizeLinear" for node in onnx.load(str(path)).graph.node)


def measured_as(monkeypatch, ndcg: tuple[float, float], ms: tuple[float, float]) -> None:
    """Make the float graph measure ``ndcg[0]``, ``ms[0]`` and the int8 graph ``ndcg[1]``, ``ms[1]``."""

    def which(path) -> int:
        return int(path.name.endswith(".int8.onnx"))

    monkeypatch.setattr(compress, "onnx_scorer", which)
    monkeypatch.setattr(compress, "ranking", lambda graph, clicks, tables: {"ndcg@10": ndcg[graph]})
    monkeypatch.setattr(compress, "ms_per_1000", lambda path, rows: ms[which(path)])


DECISIONS = {
    "within tolerance and faster": ((0.5, 0.4975), (2.0, 1.0), {}, True),
    "loses more than the tolerance": ((0.5, 0.49), (2.0, 1.0), {}, False),
    "loses everything, however fast": ((0.5, 0.0), (100.0, 1.0), {}, False),
    "no faster": ((0.5, 0.5), (1.0, 1.0), {}, False),
    "faster, by less than the minimum": ((0.5, 0.5), (1.05, 1.0), {}, False),
    "slower, though it ranks better": ((0.5, 0.6), (1.0, 2.0), {}, False),
    "exactly at both limits": ((0.5, 0.25), (2.0, 1.0), {"tolerance": 0.5, "min_speedup": 2.0}, True),
    "a looser tolerance admits the loss": ((0.5, 0.49), (2.0, 1.0), {"tolerance": 0.05}, True),
}


@pytest.mark.parametrize(("ndcg", "ms", "limits", "kept"), DECISIONS.values(), ids=DECISIONS)
def test_int8_replaces_the_float_graph_only_when_within_tolerance_and_fast_enough(
    monkeypatch, world, graph, ndcg, ms, limits, kept
):
    ds, tables, rows = world
    float_bytes, before = graph.stat().st_size, sha256_file(graph)
    measured_as(monkeypatch, ndcg, ms)
    result = quantise_if_harmless(graph, ds.test_clicks[:40], tables, rows, **limits)
    assert result.kept is kept
    assert (result.ndcg_float, result.ndcg_int8, result.ms_float, result.ms_int8) == (*ndcg, *ms)
    assert result.bytes_float == float_bytes and 0 < result.bytes_int8 < float_bytes
    if kept:
        assert is_int8(graph) and graph.stat().st_size == result.bytes_int8
    else:
        assert sha256_file(graph) == before and not is_int8(graph)
    assert not graph.with_suffix(".int8.onnx").exists()


def test_the_reported_figures_are_those_measured_on_each_graph(monkeypatch, world, graph, tmp_path):
    ds, tables, rows = world
    clicks = ds.test_clicks[:40]
    original = shutil.copyfile(graph, tmp_path / "original.onnx")
    timings = {}

    def timed(path, rows):
        timings[path.name] = ms_per_1000(path, rows, repeats=3)
        return timings[path.name]

    monkeypatch.setattr(compress, "ms_per_1000", timed)
    result = quantise_if_harmless(graph, clicks, tables, rows, tolerance=1.0, min_speedup=0.0)
    assert result.kept and is_int8(graph)
    assert result.ndcg_float == ranking(onnx_scorer(original), clicks, tables)["ndcg@10"]
    assert result.ndcg_int8 == ranking(onnx_scorer(graph), clicks, tables)["ndcg@10"]
    assert (result.ms_float, result.ms_int8) == (timings["student.onnx"], timings["student.int8.onnx"])
    assert (result.bytes_float, result.bytes_int8) == (original.stat().st_size, graph.stat().st_size)


def test_only_the_quantisers_expected_warnings_are_dropped(caplog):
    # The quantiser logs on the root logger, so the test does too.
    with caplog.at_level(logging.WARNING), _quiet_quantiser():
        logging.warning("Inference failed or unsupported type to quantize for tensor 'recent', type is ...")
        logging.warning("Please consider to run pre-processing before quantization.")
        logging.warning("something else went wrong")
    assert [r.getMessage() for r in caplog.records] == ["something else went wrong"]


def test_a_quantiser_failure_keeps_the_float_graph_and_says_why(tmp_path, monkeypatch, caplog):
    graph = tmp_path / "m.onnx"
    graph.write_bytes(b"float graph")

    def broken(source: str, target: str, **_: object) -> None:
        Path(target).write_bytes(b"half written")
        raise RuntimeError("no kernel for GRU")

    monkeypatch.setattr(compress, "quantize_dynamic", broken)
    with caplog.at_level(logging.WARNING, logger="offline.compress"):
        result = compress.keep_int8_if_harmless(graph, lambda path: 0.5, lambda path: 1.0)
    assert not result.kept and "no kernel for GRU" in result.failed
    assert result.ndcg_float == 0.5 and result.ms_float == 1.0
    assert graph.read_bytes() == b"float graph" and not graph.with_suffix(".int8.onnx").exists()
    assert any("keeping the float graph" in r.getMessage() for r in caplog.records)
