"""Warm start copies what the previous version knew, row by external id, and builds vectors for
ids it never saw from their content instead of random noise."""

import torch

from offline.samples import Catalogue
from offline.sequence_model import Shape
from offline.sequence_pipeline import TABLES, new_model
from offline.student import Student
from offline.warm_start import first_epoch_reaching, warm_start
from stream.events import Event, ItemAttributes


def catalogue(rows: list[tuple[str, str, str]]) -> Catalogue:
    cat = Catalogue()
    for n, (user, item, category) in enumerate(rows):
        cat.observe(
            Event(
                event_id=f"e{n}",
                ts=1_700_000_000_000 + n,
                user_id=user,
                item_id=item,
                type="click",
                item=ItemAttributes(category=category),
                user={"age": "30"},
            )
        )
    return cat


def sizes(cat: Catalogue) -> tuple[int, int, int, int]:
    return len(cat.users), len(cat.items), len(cat.item_tokens), len(cat.user_tokens)


def test_known_ids_keep_their_vectors_and_new_ones_start_from_their_content():
    old = catalogue([("u1", "a", "drama"), ("u1", "b", "drama"), ("u2", "c", "comedy")])
    # The new catalogue orders ids differently and adds item "d" (a drama) and user "u3".
    new = catalogue([("u3", "c", "comedy"), ("u2", "d", "drama"), ("u1", "a", "drama"), ("u1", "b", "drama")])
    torch.manual_seed(0)
    previous = Student(*sizes(old))
    model = Student(*sizes(new))
    counts = warm_start(model, previous.state_dict(), old, new)

    def item_row(m, cat, key):
        return m.emb.item.weight[cat.items.get(key)]

    for key in ("a", "b", "c"):
        assert torch.equal(item_row(model, new, key), item_row(previous, old, key))
    dramas = (item_row(previous, old, "a") + item_row(previous, old, "b")) / 2
    assert torch.allclose(item_row(model, new, "d"), dramas)
    assert torch.equal(model.emb.item.weight[0], torch.zeros_like(model.emb.item.weight[0]))  # padding stays 0
    assert torch.equal(model.head.weight, previous.head.weight)
    assert counts["items_copied"] == 3 and counts["items_from_content"] == 1 and counts["users_from_content"] == 1


def test_first_epoch_reaching_is_one_based_and_none_when_never_reached():
    assert first_epoch_reaching([0.9, 0.5, 0.4, 0.45], 0.5) == 2
    assert first_epoch_reaching([0.3], 0.5) == 1
    assert first_epoch_reaching([0.9, 0.8], 0.5) is None


def test_a_sequence_teacher_keeps_its_rows_by_id_and_describes_the_new_catalogue():
    old = catalogue([("u1", "a", "drama"), ("u1", "b", "drama"), ("u2", "c", "comedy")])
    # as many items, reordered, "b" gone and "d" new: the item_tokens buffers have the same shape
    new = catalogue([("u3", "c", "comedy"), ("u2", "d", "horror"), ("u1", "a", "drama")])
    previous = new_model(old, 8, Shape(8, 2, 1, 0.0), seed=0)
    model = new_model(new, 8, Shape(8, 2, 1, 0.0), seed=1)
    with torch.no_grad():
        previous.item_bias.weight.normal_()
    counts = warm_start(model, previous.state_dict(), old, new, TABLES, frozenset({"item_tokens"}))
    for key in ("a", "c"):
        was, now = old.items.get(key), new.items.get(key)
        assert torch.equal(model.item.weight[now], previous.item.weight[was])
        assert torch.equal(model.item_bias.weight[now], previous.item_bias.weight[was])
    for token in old.item_tokens.keys:
        assert torch.equal(
            model.token.weight[new.item_tokens.get(token)], previous.token.weight[old.item_tokens.get(token)]
        )
    horror = new.item_tokens.get(next(t for t in new.item_tokens.keys if "horror" in t))
    assert not torch.equal(model.token.weight[horror], torch.zeros(8))  # a new token keeps its initialisation
    assert torch.equal(model.item_tokens, torch.from_numpy(new.item_token_matrix(12)))  # the new catalogue's
    assert counts["items_copied"] == 2 and counts["params_copied"] > 0
