"""``streamrec bench serve`` measures the model ``train.model`` names: the ONNX student must really rank
each request's candidates (the bench refuses figures from a fallback), and the eager baseline is
that model's teacher. Its figures are times, printed, not asserted."""

import math

import pytest

from streamrec.benchmarks import bench_serve
from tests.conftest import with_section


@pytest.mark.parametrize("model", ["pointwise", "sequence"])
def test_the_bench_ranks_with_the_student_of_the_configured_model(cfg, model):
    result = bench_serve(with_section(cfg, "train", model=model), items=300, sessions=60, requests=40, warmup=5)
    assert result["model"] == model and result["catalogue_items"] >= 300
    assert 0 < result["mf_searched_items"] < result["catalogue_items"]  # the clicked items, not every one
    for name in ("onnx_student", "torch_teacher_eager"):
        assert math.isfinite(result[name]["p50_ms"]) and result[name]["candidates_median"] > 10


def test_with_every_item_clicked_the_mf_search_covers_at_most_its_bound(cfg):
    bounded = with_section(with_section(cfg, "train", model="pointwise"), "serving", mf_search_items=120)
    result = bench_serve(bounded, items=300, sessions=60, requests=40, warmup=5, every_item_clicked=True)
    assert result["catalogue_items"] >= 300 and result["mf_searched_items"] == 120
