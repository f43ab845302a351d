"""offline.teacher_checkpoint: the previous teacher kept beside the registry.

* what is saved loads back bit for bit, weights and catalogue;
* no checkpoint is ``None``; a file that does not match its checksum, or is missing, is a
  ``CheckpointError`` (the trainer then trains cold);
* saving again replaces the pair whole and leaves no temporary directories behind.
"""

from __future__ import annotations

import pytest
import torch

from offline.samples import Catalogue
from offline.student import Student
from offline.teacher_checkpoint import (
    CheckpointError,
    checkpoint_dir,
    load_checkpoint,
    save_checkpoint,
)


def _catalogue() -> Catalogue:
    c = Catalogue()
    for u in ("u1", "u2"):
        c.users.add(u)
    for i in ("i1", "i2", "i3"):
        c.items.add(i)
    c.tokens_of_item[2] = [c.item_tokens.add("cat:drama"), c.item_tokens.add("tag:90s")]
    c.tokens_of_user[1] = [c.user_tokens.add("age:24")]
    return c


def test_a_saved_teacher_loads_back_exactly(tmp_path):
    model, catalogue = Student(3, 4, 3, 2, dim=4, hidden=8), _catalogue()
    save_checkpoint(tmp_path, model, catalogue)
    state, loaded = load_checkpoint(tmp_path)
    assert loaded == catalogue
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_no_checkpoint_is_none(tmp_path):
    assert load_checkpoint(tmp_path) is None


@pytest.mark.parametrize("damage", ["truncate_weights", "edit_catalogue", "remove_checksums"])
def test_a_damaged_checkpoint_is_refused(tmp_path, damage):
    save_checkpoint(tmp_path, Student(3, 4, 3, 2, dim=4, hidden=8), _catalogue())
    d = checkpoint_dir(tmp_path)
    if damage == "truncate_weights":
        (d / "weights.pt").write_bytes((d / "weights.pt").read_bytes()[:-50])
    elif damage == "edit_catalogue":
        (d / "catalogue.json").write_text((d / "catalogue.json").read_text().replace("u1", "u9"))
    else:
        (d / "checksums.json").unlink()
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)


def test_saving_again_replaces_the_pair_and_leaves_nothing_behind(tmp_path):
    save_checkpoint(tmp_path, Student(3, 4, 3, 2, dim=4, hidden=8), _catalogue())
    newer = Student(3, 4, 3, 2, dim=4, hidden=8)
    torch.nn.init.constant_(newer.head.weight, 0.5)
    save_checkpoint(tmp_path, newer, Catalogue())
    state, catalogue = load_checkpoint(tmp_path)
    assert torch.equal(state["head.weight"], newer.head.weight) and catalogue == Catalogue()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher"]
