"""Stream state -> the inputs of a registered sequence model (``offline.sequence_export``), without
torch: the user's latest tokens as model rows, right-padded to the graph's history length, and the
candidates' rows.

The tokens are the partition's (``stream.state.tokens``), read at the partition's clock (its newest
event time), so a click shows as converted once its conversion has been applied. A token whose item
the model does not know is left out (the graph reads real tokens up to the first padding); a
candidate it does not know is row 0, scored by that row's bias alone.

Input shapes::

    item (1, L)  kind (1, L)  gap (1, L)  candidates (m,)
"""

from __future__ import annotations

import weakref

import numpy as np

from serving.model_inputs import model_rows
from stream.model_artifact import ArtifactError, Manifest
from stream.state.features import FeatureState

INPUT_NAMES = ["item", "kind", "gap", "candidates"]


def is_sequence_model(manifest: Manifest) -> bool:
    return [t.name for t in manifest.inputs] == INPUT_NAMES


class SequenceVocabulary:
    """One sequence manifest's item rows and history length."""

    def __init__(self, manifest: Manifest) -> None:
        try:
            self.items = {key: n + 1 for n, key in enumerate(manifest.id_maps["items"])}
            self.length = int(manifest.inputs[0].shape[1])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ArtifactError(
                f"model {manifest.name} v{manifest.version}: manifest lacks what serving needs "
                f"({exc!r}); export it again with this streamrec"
            ) from None
        self._partitions: weakref.WeakKeyDictionary[FeatureState, SequencePartitionInputs] = weakref.WeakKeyDictionary()

    def for_partition(self, state: FeatureState) -> SequencePartitionInputs:
        """The translator for one partition's state (created once, then kept while the state lives)."""
        inputs = self._partitions.get(state)
        if inputs is None:
            inputs = self._partitions[state] = SequencePartitionInputs(self, state)
        return inputs


class SequencePartitionInputs:
    """One partition's tokens and dense items -> model rows. Call under the partition's lock."""

    def __init__(self, vocab: SequenceVocabulary, state: FeatureState) -> None:
        self.vocab = vocab
        self.state = state
        self.item_index = np.zeros(0, dtype=np.int64)  # stream item -> model row (0: unknown)

    def build(self, user_id: str, user: int | None, items: np.ndarray) -> dict[str, np.ndarray]:
        """The model's inputs for ``user`` (stream id, None if unknown) and (m,) stream candidate items."""
        known = len(self.item_index)
        if known < self.state.n_items:  # items the partition met since the last request
            self.item_index = np.concatenate([self.item_index, model_rows(self.state, known, self.vocab.items)])
        length = self.vocab.length
        padded = {name: np.zeros((1, length), dtype=np.int64) for name in INPUT_NAMES[:3]}
        if user is not None:
            history = self.state.tokens.read(user, self.state.max_ts_ms)
            rows = self.item_index[history.item]
            kept = np.flatnonzero(rows > 0)[-length:]
            for name, values in (("item", rows), ("kind", history.kind), ("gap", history.gap)):
                padded[name][0, : len(kept)] = values[kept]
        return {**padded, "candidates": self.item_index[items]}
