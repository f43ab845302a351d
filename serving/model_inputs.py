"""Stream state -> the five int64 inputs of a registered model, without torch.

The model names users, items and content tokens by its own training-time indices (the manifest's
``id_maps``; 0 = unknown), the stream state by dense per-partition ids. :class:`ModelVocabulary`
holds one model's maps; :class:`PartitionInputs` translates one partition's ids into them, with
arrays that grow as the partition meets new items. An item the model never saw is scored from its
content (its category token) with item index 0: the cold-start path.

Input shapes (``offline/features.py`` defines them for training)::

    user (B,)  item (B,)  recent (B, L)  item_tokens (B, T)  user_tokens (B, A)
"""

from __future__ import annotations

import weakref

import numpy as np

from stream.model_artifact import ArtifactError, Manifest
from stream.state.features import FeatureState


def model_rows(state: FeatureState, start: int, items: dict[str, int]) -> np.ndarray:
    """The model's indices (``items``: external id -> index, 0 unknown) of the partition's dense
    items from ``start`` to the last it knows now."""
    keys = state.items.keys[start : state.n_items]
    return np.fromiter((items.get(k, 0) for k in keys), dtype=np.int64, count=len(keys))


class ModelVocabulary:
    """One manifest's id maps and content tables, as lookups."""

    def __init__(self, manifest: Manifest) -> None:
        try:
            maps = manifest.id_maps
            self.users = {key: n + 1 for n, key in enumerate(maps["users"])}
            self.items = {key: n + 1 for n, key in enumerate(maps["items"])}
            self.item_token_index = {key: n + 1 for n, key in enumerate(maps["item_tokens"])}
            self.item_tokens = np.asarray(manifest.extra["item_token_table"], dtype=np.int64)
            self.user_tokens = np.asarray(manifest.extra["user_token_table"], dtype=np.int64)
            widths = {t.name: t.shape for t in manifest.inputs}
            self.recent_len = int(widths["recent"][1])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ArtifactError(
                f"model {manifest.name} v{manifest.version}: manifest lacks what serving needs "
                f"({exc!r}); export it again with this streamrec"
            ) from None
        if (
            self.item_tokens.ndim != 2
            or len(self.item_tokens) != len(self.items) + 1
            or self.user_tokens.ndim != 2
            or len(self.user_tokens) != len(self.users) + 1
        ):
            raise ArtifactError(
                f"model {manifest.name} v{manifest.version}: token tables do not match its id maps; export it again"
            )
        self._partitions: weakref.WeakKeyDictionary[FeatureState, PartitionInputs] = weakref.WeakKeyDictionary()

    def for_partition(self, state: FeatureState) -> PartitionInputs:
        """The translator for one partition's state (created once, then kept while the state lives)."""
        inputs = self._partitions.get(state)
        if inputs is None:
            inputs = self._partitions[state] = PartitionInputs(self, state)
        return inputs


class PartitionInputs:
    """Dense stream ids of one partition -> model indices. Call under the partition's lock."""

    def __init__(self, vocab: ModelVocabulary, state: FeatureState) -> None:
        self.vocab = vocab
        self.state = state
        self.item_index = np.zeros(0, dtype=np.int64)  # stream item -> model item (0: unknown)
        self.item_tokens = np.zeros((0, vocab.item_tokens.shape[1]), dtype=np.int64)

    def _catch_up(self) -> None:
        """Extend the item maps to every item the partition knows now."""
        known, n = len(self.item_index), self.state.n_items
        if known == n:
            return
        index = model_rows(self.state, known, self.vocab.items)
        tokens = self.vocab.item_tokens[index]  # row 0 (all padding) for unknown items
        categories = self.state.categories.keys
        for row, stream_item in enumerate(range(known, n)):
            if index[row] == 0:  # cold item: describe it by its category, the content the state keeps
                cat = self.state.item_category[stream_item]
                if cat >= 0:
                    tokens[row, 0] = self.vocab.item_token_index.get(f"cat:{categories[cat]}", 0)
        self.item_index = np.concatenate([self.item_index, index])
        self.item_tokens = np.concatenate([self.item_tokens, tokens])

    def build(self, user_id: str, user: int | None, items: np.ndarray) -> dict[str, np.ndarray]:
        """The model's inputs for ``user`` (stream id, None if unknown) and (m,) stream candidate items."""
        self._catch_up()
        m = len(items)
        model_user = self.vocab.users.get(user_id, 0)
        recent = np.zeros(self.vocab.recent_len, dtype=np.int64)
        if user is not None:
            mapped = self.item_index[self.state.recent_items(user)]
            mapped = mapped[mapped > 0][: self.vocab.recent_len]  # unknown items are padding to the model
            recent[: len(mapped)] = mapped
        return {
            "user": np.full(m, model_user, dtype=np.int64),
            "item": self.item_index[items],
            "recent": np.broadcast_to(recent, (m, len(recent))),
            "item_tokens": self.item_tokens[items],
            "user_tokens": np.broadcast_to(self.vocab.user_tokens[model_user], (m, self.vocab.user_tokens.shape[1])),
        }
