"""Compression of the sequence student, each kind kept only where ``offline.compress.worth_keeping``
says so (at most 1 % of validation NDCG@10 lost, at least 1.1x faster per request), its figures
reported either way.

* **Structured pruning**: the student's least important width channels are removed from every layer,
  giving a narrower model of the same kind (``narrower``) that onnxruntime runs with smaller
  matrices; its LayerNorm then normalises fewer channels, so it is distilled again from those
  weights for a few epochs (``offline.sequence_pipeline.prune_student``). A channel's importance is
  its L2 norm over the item vectors (what the state meets at every candidate) times its LayerNorm
  gain (how much of the state it carries).
* **int8**: the exported graph's dynamic quantisation (``offline.compress.keep_int8_if_harmless``),
  judged by the graph's own scores of the validation points under the served rule.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from offline.compress import CompressionResult, keep_int8_if_harmless
from offline.evaluate import gain
from offline.export import OUTPUT_NAME
from offline.sequence_data import ServedPoints, served_rows
from offline.sequence_export import ms_per_request, request_inputs
from offline.sequence_model import SequenceModel
from serving.model import onnx_session

TABLES = ("item", "token", "kind", "gap", "position")  # embeddings whose columns are the width


@torch.no_grad()
def channel_importance(model: SequenceModel) -> np.ndarray:
    """(d,) each width channel's norm over the item vectors times its LayerNorm gain."""
    norms = model.item_vectors().norm(dim=0) * model.norm.weight.abs()
    out: np.ndarray = norms.numpy()
    return out


def pruned_channels(model: SequenceModel, share: float) -> np.ndarray:
    """The channels kept when the least important ``share`` of the width is pruned, in order."""
    d = model.shape.dim
    drop = min(max(round(share * d), 1), d - 1)
    return np.sort(np.argsort(-channel_importance(model), kind="stable")[: d - drop])


@torch.no_grad()
def narrower(model: SequenceModel, keep: np.ndarray) -> SequenceModel:
    """A copy of the GRU ``model`` with only the width channels ``keep`` (k,) in every layer."""
    if not isinstance(model.blocks, nn.GRU):
        raise ValueError("structured pruning is built for the GRU student, not the attention teacher")
    d, k = model.shape.dim, torch.from_numpy(keep)
    gates = torch.cat([k, d + k, 2 * d + k])  # each of the GRU's three gates, and the conversion head's input
    out = SequenceModel(
        model.item_tokens.clone(), model.token.num_embeddings, model.length, replace(model.shape, dim=len(keep))
    )
    state = model.state_dict()
    sliced = {f"{name}.weight": state[f"{name}.weight"][:, k] for name in TABLES}
    sliced |= {"norm.weight": state["norm.weight"][k], "norm.bias": state["norm.bias"][k]}
    sliced |= {"conversion.0.weight": state["conversion.0.weight"][k][:, gates]}
    sliced |= {"conversion.0.bias": state["conversion.0.bias"][k]}
    sliced["conversion.2.weight"] = state["conversion.2.weight"][:, k]
    for layer in range(model.shape.blocks):
        for part in ("ih", "hh"):
            sliced[f"blocks.weight_{part}_l{layer}"] = state[f"blocks.weight_{part}_l{layer}"][gates][:, k]
            sliced[f"blocks.bias_{part}_l{layer}"] = state[f"blocks.bias_{part}_l{layer}"][gates]
    out.load_state_dict({**state, **sliced})
    return out


def graph_served_gains(path: Path, points: ServedPoints, n_rows: int, k: int = 10) -> np.ndarray:
    """(N,) NDCG@k of each point under the served rule, scored by the exported graph at ``path``
    (``offline.sequence_data.served_gains``'s figures, read from onnxruntime)."""
    session, rows = onnx_session(path), served_rows(n_rows, points)
    out = np.zeros(len(points))
    for n, click in enumerate(points.clicks):
        feed = request_inputs(points.item[n], points.kind[n], points.gap[n], rows)
        out[n] = gain(session.run([OUTPUT_NAME], feed)[0], click, k)
    return out


def quantise_sequence_if_harmless(
    onnx_path: Path, points: ServedPoints, n_rows: int, requests: list[dict[str, np.ndarray]]
) -> CompressionResult:
    """Replace the graph at ``onnx_path`` by its int8 form when ``worth_keeping`` (validation NDCG@10
    of ``points``, milliseconds per request over ``requests``)."""
    return keep_int8_if_harmless(
        onnx_path,
        lambda path: float(graph_served_gains(path, points, n_rows).mean()) if len(points) else 0.0,
        lambda path: ms_per_request(path, requests),
    )
