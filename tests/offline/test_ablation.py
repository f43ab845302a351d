"""The ablation command measures every variant it names, on one test window, in one run."""

import math

from offline.ablation import run_ablations
from stream.config import load_config
from stream.sources.synthetic import SyntheticConfig, synthetic_events


def test_every_ablation_variant_is_measured():
    cfg = load_config(overrides=["train.epochs=2", "train.batch_size=256", "train.test_clicks=40", "train.validation_clicks=40"])
    events = list(synthetic_events(SyntheticConfig(n_users=120, n_items=100, n_sessions=1000)))
    report = run_ablations(cfg, events, log=lambda _: None)
    assert set(report["curriculum"]) == {"on", "off"}
    assert list(report["distillation"]) == ["labels_only", "+soft", "+soft+hint", "+soft+hint+rank"]
    for variant in [*report["curriculum"].values(), *report["distillation"].values()]:
        assert math.isfinite(variant["ndcg@10"]) and 0 <= variant["auc_click"] <= 1
    for side in ("multi_task_esmm", "single_task"):
        assert 0 <= report["multi_task"][side]["auc_conversion"] <= 1
    assert report["multi_task"]["test_conversions"] > 0
