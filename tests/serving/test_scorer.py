"""The scorer: top-k from the model when there is one, from the online learners when there is not,
and always one named version per response."""

import msgspec
import numpy as np
import pytest

from serving.model import OnnxModel
from serving.model_inputs import ModelVocabulary
from serving.scorer import Scorer, rank_of_item, top_k_order
from stream.events import Event, ItemAttributes
from stream.learners.blend import SIGNALS, OnlineBlend


def busy_user(processor) -> str:
    return processor.state.users.keys[max(processor.state.seen, key=lambda u: len(processor.state.seen[u]))]


class Exploding:
    def __init__(self, manifest):
        self.manifest = manifest

    def score(self, inputs):
        raise RuntimeError("onnxruntime failed")


def test_with_a_model_the_response_names_its_version_and_ranks_unseen_items(cfg, processor, student_dir):
    scorer = Scorer(cfg.serving)
    scorer.swap(OnnxModel.load(student_dir))
    user = busy_user(processor)
    rec = scorer.recommend(processor, user, 10)
    assert rec.model_version == OnnxModel.load(student_dir).manifest.version and rec.fallback is None
    assert len(rec.items) == 10 == len(set(rec.items))
    assert rec.scores == sorted(rec.scores, reverse=True)
    seen = {processor.state.items.keys[i] for i in processor.state.seen_items(processor.state.users.get(user))}
    assert not set(rec.items) & seen


def test_without_a_model_the_online_learners_answer(cfg, processor):
    rec = Scorer(cfg.serving).recommend(processor, busy_user(processor), 10)
    assert rec.model_version is None and rec.fallback == "no_model" and len(rec.items) == 10


def test_a_failing_model_falls_back_and_stays_loaded(cfg, processor, student_dir):
    scorer = Scorer(cfg.serving)
    scorer.swap(Exploding(OnnxModel.load(student_dir).manifest))
    rec = scorer.recommend(processor, busy_user(processor), 5)
    assert rec.fallback == "model_error" and rec.model_version is None and len(rec.items) == 5
    assert scorer.current is not None


def test_with_only_the_student_weighted_the_order_is_the_models(cfg, processor, student_dir):
    processor.blend = OnlineBlend({**dict.fromkeys(SIGNALS, 0.0), "student": 1.0}, learning_rate=0.0)
    model = OnnxModel.load(student_dir)
    scorer = Scorer(cfg.serving)
    scorer.swap(model)
    user = busy_user(processor)
    rec = scorer.recommend(processor, user, 10)
    state = processor.state
    c = scorer.candidates.generate(state, processor.knn, processor.mf, state.users.get(user))
    logits = model.score(scorer.current.vocab.for_partition(state).build(user, state.users.get(user), c.items))
    expected = [state.items.keys[i] for i in c.items[top_k_order(logits, c.items, 10)]]
    assert rec.items == expected


def sampled_id(processor, sampled: bool = True) -> str:
    return next(f"x{n}" for n in range(1000) if processor.blend.samples(f"x{n}") == sampled)


def test_a_click_on_a_candidate_teaches_the_partitions_blend(cfg, processor, student_dir):
    scorer = Scorer(cfg.serving)
    scorer.swap(OnnxModel.load(student_dir))
    user = busy_user(processor)
    state = processor.state
    c = scorer.candidates.generate(state, processor.knn, processor.mf, state.users.get(user))
    item = state.items.keys[int(c.items[len(c.items) // 2])]
    start = processor.blend.weights
    click = Event(event_id=sampled_id(processor, False), ts=state.max_ts_ms, user_id=user, item_id=item, type="click")
    scorer.learn_click(processor, click)  # not one of the sampled clicks: not even scored
    assert processor.blend.weights == start and processor.blend.clicks_learned == 0
    scorer.learn_click(processor, msgspec.structs.replace(click, event_id=sampled_id(processor)))
    assert processor.blend.clicks_learned == 1
    assert set(processor.blend.weights) == set(start) and processor.blend.weights != start
    assert processor.blend.weights["student"] != start["student"]  # the model's score took part


def test_a_click_the_blend_cannot_learn_from_changes_nothing(cfg, processor):
    scorer = Scorer(cfg.serving)
    user, start = busy_user(processor), processor.blend.weights
    seen = processor.state.items.keys[processor.state.seen_items(processor.state.users.get(user))[0]]
    for item_id in (seen, "never-seen-item"):  # not a candidate; not even known
        scorer.learn_click(
            processor,
            Event(
                event_id=sampled_id(processor),
                ts=processor.state.max_ts_ms,
                user_id=user,
                item_id=item_id,
                type="click",
            ),
        )
    assert processor.blend.weights == start and processor.blend.clicks_learned == 0


def test_a_new_users_click_on_a_trending_item_teaches_the_blend(cfg, processor):
    """A user the partition has never seen is served the trending items, so a click on one of them
    says how that ranking did, as the replay counts it."""
    scorer = Scorer(cfg.serving)
    trending = scorer.candidates.generate(processor.state, processor.knn, processor.mf, None).items
    scorer.learn_click(
        processor,
        Event(
            event_id=sampled_id(processor),
            ts=processor.state.max_ts_ms,
            user_id="someone-new",
            item_id=processor.state.items.keys[int(trending[0])],
            type="click",
        ),
    )
    assert processor.blend.clicks_learned == 1


def test_a_failure_to_learn_is_counted_never_raised(cfg, processor, caplog):
    scorer = Scorer(cfg.serving)
    scorer.score = lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("candidate generation failed"))
    user = busy_user(processor)
    item = processor.state.items.keys[0]
    sampled = [f"x{n}" for n in range(1000) if processor.blend.samples(f"x{n}")][:3]
    for event_id in sampled:
        scorer.learn_click(
            processor, Event(event_id=event_id, ts=processor.state.max_ts_ms, user_id=user, item_id=item, type="click")
        )
    assert scorer.blend_failures == 3
    assert sum("could not learn the blend" in r.getMessage() for r in caplog.records) == 1


def test_inputs_map_known_items_to_the_models_ids_and_cold_items_to_their_category(cfg, processor, student_dir):
    model = OnnxModel.load(student_dir)
    vocab = ModelVocabulary(model.manifest)
    category = processor.state.categories.keys[0]
    processor.process(
        Event(
            event_id="cold",
            ts=processor.state.max_ts_ms,
            user_id="u-cold",
            item_id="never-trained",
            type="impression",
            item=ItemAttributes(category=category),
        )
    )
    state = processor.state
    known = state.items.keys[0]
    cold = state.items.get("never-trained")
    user = busy_user(processor)
    x = vocab.for_partition(state).build(user, state.users.get(user), np.array([0, cold]))
    assert x["item"].tolist() == [vocab.items[known], 0]
    assert x["item_tokens"][1, 0] == vocab.item_token_index[f"cat:{category}"]
    assert (x["recent"][0] > 0).sum() == min(len(state.recent_items(state.users.get(user))), vocab.recent_len)
    assert {k: v.shape[0] for k, v in x.items()} == dict.fromkeys(x, 2)


@pytest.mark.parametrize("k", [1, 3, 50])
def test_top_k_order_is_best_first_with_ties_to_the_lower_item(k):
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.9])
    items = np.array([10, 4, 2, 7, 3])
    order = top_k_order(scores, items, k)
    assert items[order].tolist() == [3, 4, 2, 10, 7][:k]


def test_the_rank_of_an_item_is_its_place_in_the_published_order():
    rng = np.random.default_rng(0)
    scores, items = rng.integers(0, 5, 40).astype(float), rng.permutation(100)[:40]
    order = items[top_k_order(scores, items, 40)].tolist()
    assert [rank_of_item(scores, items, i) for i in order] == list(range(40))
    assert rank_of_item(scores, items, 1000) is None
