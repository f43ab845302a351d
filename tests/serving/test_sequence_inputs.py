"""A sequence model in serving: a request feeds the graph the user's tokens as training built them
(known items only, right-padded), the scorer serves a staged sequence student like any model, and
its scores are the torch model's for the same history and candidates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline.samples import Catalogue
from offline.sequence_export import request_inputs, stage_sequence
from offline.sequence_fit import next_click_logits
from offline.sequence_model import SequenceModel, Shape
from offline.sequences import UserSequence, next_clicks, user_sequences
from serving.model import OnnxModel
from serving.scorer import Scorer
from serving.sequence_inputs import SequenceVocabulary
from stream.learners.blend import SIGNALS, OnlineBlend
from stream.model_artifact import TrainingWindow
from stream.state.tokens import CLICK, CONVERTED, NEVER
from tests.serving.test_scorer import busy_user

LENGTH = 12


@pytest.fixture(scope="module")
def catalogue(small_stream) -> Catalogue:
    catalogue = Catalogue()
    user_sequences(small_stream, catalogue)
    return catalogue


@pytest.fixture(scope="module")
def model(catalogue) -> SequenceModel:
    torch.manual_seed(0)
    tokens = torch.from_numpy(catalogue.item_token_matrix(4))
    m = SequenceModel(tokens, len(catalogue.item_tokens), LENGTH, Shape(dim=8, heads=1, blocks=1, dropout=0.0))
    with torch.no_grad():
        m.item_bias.weight.normal_()
    return m.eval()


@pytest.fixture(scope="module")
def sequence_dir(model, catalogue, tmp_path_factory):
    directory = tmp_path_factory.mktemp("sequence")
    item = np.zeros(LENGTH, dtype=np.int64)
    item[:3] = [1, 2, 3]
    example = request_inputs(item, np.where(item > 0, 2, 0), np.zeros(LENGTH, dtype=np.int64), np.arange(1, 20))
    stage_sequence(
        model, "student", directory, catalogue, example, TrainingWindow(start_ts_ms=0, end_ts_ms=1, events=1), {}
    )
    return directory


def offline_history(small_stream, catalogue, user_id: str):
    """The user's last LENGTH tokens as offline training builds them for a click at the log's last
    moment (the partition's clock, which a request reads the tokens at)."""
    s = user_sequences(small_stream, catalogue)[user_id]
    now = max(e.ts for e in small_stream)
    probe = UserSequence(
        np.append(s.items, 1),
        np.append(s.kinds, CLICK),
        np.append(s.ts, now),
        np.append(s.converted_at, NEVER),
        np.append(s.order, 10**9),
    )
    return next_clicks({user_id: probe}, LENGTH, since=10**9)


def converting_user(processor) -> str:
    """A user with a converted click among their latest LENGTH tokens and LENGTH tokens at least."""
    state = processor.state
    for user_id in state.users.keys:
        kinds = state.tokens.read(state.users.get(user_id), state.max_ts_ms).kind[-LENGTH:]
        if len(kinds) == LENGTH and (kinds == CONVERTED).any():
            return user_id
    raise AssertionError("no such user in the stream")


def test_a_request_reads_the_users_tokens_as_training_built_them(processor, sequence_dir, small_stream, catalogue):
    vocab = SequenceVocabulary(OnnxModel.load(sequence_dir).manifest)
    user_id = converting_user(processor)
    state = processor.state
    items = np.arange(5)
    got = vocab.for_partition(state).build(user_id, state.users.get(user_id), items)
    expected = offline_history(small_stream, catalogue, user_id)
    for name in ("item", "kind", "gap"):
        np.testing.assert_array_equal(got[name][0], getattr(expected, name)[0])
    assert (got["item"][0] > 0).sum() == LENGTH
    keys = [state.items.keys[i] for i in items]
    assert got["candidates"].tolist() == [catalogue.items.keys.index(k) + 1 for k in keys]


def test_tokens_of_items_the_model_does_not_know_are_left_out(processor, sequence_dir):
    manifest = OnnxModel.load(sequence_dir).manifest
    user_id = busy_user(processor)
    state = processor.state
    user = state.users.get(user_id)
    tokens = state.tokens.read(user, state.max_ts_ms)
    forgotten = state.items.keys[tokens.item[-1]]  # the item of the user's latest token
    fewer = SequenceVocabulary(manifest)
    del fewer.items[forgotten]
    got = fewer.for_partition(state).build(user_id, user, np.arange(3))
    kept = [fewer.items[state.items.keys[i]] for i in tokens.item.tolist() if state.items.keys[i] != forgotten]
    expected = np.zeros(LENGTH, dtype=np.int64)
    expected[: min(LENGTH, len(kept))] = kept[-LENGTH:]
    np.testing.assert_array_equal(got["item"][0], expected)  # the rest, still right-padded


def test_the_scorer_serves_a_staged_sequence_student(cfg, processor, sequence_dir, model, small_stream, catalogue):
    processor.blend = OnlineBlend({**dict.fromkeys(SIGNALS, 0.0), "student": 1.0}, learning_rate=0.0)
    onnx = OnnxModel.load(sequence_dir)
    scorer = Scorer(cfg.serving)
    scorer.swap(onnx)
    user_id = busy_user(processor)
    scored = scorer.score(processor, user_id)
    assert scored.fallback is None and scored.version == onnx.manifest.version
    rows = [catalogue.items.keys.index(scored.keys[i]) + 1 for i in scored.items.tolist()]
    expected = next_click_logits(model, offline_history(small_stream, catalogue, user_id))[0, rows]
    np.testing.assert_allclose(scored.signals["student"], expected, rtol=1e-4, atol=1e-4)
