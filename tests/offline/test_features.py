"""offline.features: the offline evaluation scores later users and items as serving does.

A user or item first logged after the training window has no row in the exported model. For a
test click, the inputs ``ContentTables`` builds for every item logged before it must equal, item by
item, the inputs serving builds (``serving/model_inputs.py``) from the exported manifest and a
partition's state fed the same events: model ids, content tokens of cold items (the category
alone), no demographics for a cold user, and the history without the items the model never saw.
"""

from __future__ import annotations

import numpy as np
import pytest

from offline.export import stage
from offline.features import ContentTables
from offline.pipeline import model_sizes
from offline.samples import build_dataset
from offline.student import Student
from serving.model_inputs import ModelVocabulary
from stream.config import load_config
from stream.model_artifact import read_manifest
from stream.sources.synthetic import SyntheticConfig, synthetic_events
from stream.state.features import FeatureState


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    events = sorted(synthetic_events(SyntheticConfig(n_users=60, n_items=50, n_sessions=300)), key=lambda e: e.ts)
    ds = build_dataset(events)
    tables = ContentTables(ds.catalogue)
    rows = tables.arrays(ds.test.user[:256], ds.test.item[:256], ds.test.recent[:256])
    directory = tmp_path_factory.mktemp("student")
    stage(
        Student(*model_sizes(ds)).eval(),
        "student",
        directory,
        ds.catalogue,
        tables,
        rows,
        ds.window,
        ds.events,
        {"validation": {}},
    )
    return events, ds, tables, ModelVocabulary(read_manifest(directory))


def serving_inputs(events, vocab: ModelVocabulary, click_number: int, user_id: str) -> tuple[list[str], dict]:
    """Serving's inputs for ``user_id`` over every item of a state fed the events before the
    ``click_number``-th click, and those items' keys."""
    state = FeatureState(load_config().state)
    clicks = 0
    for e in events:
        if e.type == "click":
            if clicks == click_number:
                break
            clicks += 1
        state.update(state.resolve(e))
    items = np.arange(state.n_items)
    return state.items.keys, vocab.for_partition(state).build(user_id, state.users.get(user_id), items)


def test_the_world_has_users_and_items_the_model_never_saw(world):
    _, ds, _, vocab = world
    cat = ds.catalogue
    assert len(cat.later_users) > 1 and len(cat.later_items) > 1
    assert not set(cat.later_users.keys) & set(vocab.users) and not set(cat.later_items.keys) & set(vocab.items)


def test_offline_inputs_of_a_test_click_are_servings_item_by_item(world):
    events, ds, tables, vocab = world
    cat = ds.catalogue
    later_user = next(c for c in ds.test_clicks if c.user >= len(cat.users) and c.recent.any())
    user_id = cat.later_users.keys[later_user.user - len(cat.users)]
    keys, served = serving_inputs(events, vocab, later_user.clicks_before, user_id)
    offline = tables.catalogue_for(later_user.user, later_user.recent)
    row_of = {key: n for n, key in enumerate([*cat.items.keys, *cat.later_items.keys])}  # item row - 1
    assert len(keys) == later_user.known  # the items logged before the click, and only those
    at = np.array([row_of[k] for k in keys])
    for name in ("user", "item", "recent", "item_tokens", "user_tokens"):
        assert (offline[name][at] == served[name]).all(), name
    cold = served["item"] == 0
    assert cold.any() and served["item_tokens"][cold, 0].any()  # cold items scored by their category
    assert not served["user"].any() and not served["user_tokens"].any()
