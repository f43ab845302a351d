"""A sequence model -> one ONNX graph that scores a request: the user's tokens are encoded once, then
each candidate costs a dot product (``SequenceScorer``). Checked like every export: onnxruntime must
agree with torch within ``offline.export.PARITY_TOLERANCE`` (``require_parity``), or nothing is kept.

Graph inputs (int64): ``item``, ``kind``, ``gap`` (1, L), the user's right-padded tokens
(``offline.sequences``); ``candidates`` (m,) item rows. Output: ``click_logit`` (m,).
``stage_sequence`` writes the graph with its manifest (``stream.model_artifact``): item rows are
``id_maps["items"]`` (row r is ``items[r - 1]``; 0 is padding, and scores an unknown candidate).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from offline.export import OPSET, OUTPUT_NAME, median_ms, require_parity
from offline.samples import Catalogue
from offline.sequence_model import SequenceModel, Tokens
from serving.model import onnx_session
from stream.model_artifact import Manifest, TensorSpec, TrainingWindow, sha256_file, utc_timestamp, write_manifest

INPUT_NAMES = ("item", "kind", "gap", "candidates")
FEATURES = {
    "item": "the user's latest tokens' item rows (id_maps.items[row - 1]), oldest first, 0-padded on the right",
    "kind": "each token's kind: 1 impression, 2 click, 3 click whose conversion is logged (stream.state.tokens)",
    "gap": "each token's log2-second bucket of the time since the user's previous token (stream.state.tokens)",
    "candidates": "the item rows to score (0: an item the model does not know)",
}


class SequenceScorer(nn.Module):
    """(1, L) x 3 tokens, (m,) candidate rows -> (m,) next-click logits of the candidates.

    Every item's vector (id plus content, ``SequenceModel.item_vectors``) is computed once here and
    exported as a constant (items + 1, d) table, so an item in the history or among the candidates
    costs one row lookup instead of its content tokens' mean."""

    vectors: torch.Tensor  # (items + 1, d)
    bias: torch.Tensor  # (items + 1,)

    def __init__(self, model: SequenceModel) -> None:
        super().__init__()
        self.model = model
        with torch.no_grad():
            self.register_buffer("vectors", model.item_vectors().clone())
            self.register_buffer("bias", model.item_bias.weight[:, 0].clone())

    def forward(
        self, item: torch.Tensor, kind: torch.Tensor, gap: torch.Tensor, candidates: torch.Tensor
    ) -> torch.Tensor:
        user = self.model.last_state(Tokens(item, kind, gap), self.vectors)  # (1, d)
        # Multiply and sum rather than a matrix-vector product: onnxruntime's MatMul took 48 us for
        # (350, 10) x (10,), most of a small student's request; Mul + ReduceSum take a few.
        out: torch.Tensor = (self.vectors[candidates] * user).sum(dim=1) + self.bias[candidates]  # (m,)
        return out


def request_inputs(
    item: np.ndarray, kind: np.ndarray, gap: np.ndarray, candidates: np.ndarray
) -> dict[str, np.ndarray]:
    """One request's named inputs: (L,) tokens and (m,) candidate rows."""
    tokens = {"item": item, "kind": kind, "gap": gap}
    feed = {name: np.ascontiguousarray(t[None, :], dtype=np.int64) for name, t in tokens.items()}
    return {**feed, "candidates": np.ascontiguousarray(candidates, dtype=np.int64)}


def export_sequence_onnx(model: SequenceModel, path: Path, example: dict[str, np.ndarray]) -> float:
    """Trace ``SequenceScorer(model)`` with a dynamic candidate axis; return the parity on
    ``example`` (a ``request_inputs``), deleting the file and raising if it exceeds the tolerance."""
    scorer = SequenceScorer(model).eval()
    args = tuple(torch.from_numpy(example[n]) for n in INPUT_NAMES)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # its fused kernel has no ONNX form
    try:
        with warnings.catch_warnings():
            # Two cautions that do not apply: candidate rows are never negative, and a request is one
            # history (batch 1, as traced), so the GRU never sees another batch size.
            warnings.filterwarnings("ignore", "Exporting aten::index operator", UserWarning)
            warnings.filterwarnings("ignore", "Exporting a model to ONNX with a batch_size other than 1", UserWarning)
            torch.onnx.export(
                scorer,
                args,
                str(path),
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_axes={"candidates": {0: "candidates"}, OUTPUT_NAME: {0: "candidates"}},
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    with torch.no_grad():
        expected = scorer(*args).numpy()
    got = onnx_session(path).run([OUTPUT_NAME], example)[0]
    diff = float(np.max(np.abs(expected - got)))
    require_parity(diff, path, "not exported")
    return diff


def ms_per_request(path: Path, requests: list[dict[str, np.ndarray]], repeats: int = 5) -> float:
    """Median milliseconds of one request (``request_inputs``) on one onnxruntime thread."""
    return median_ms(path, requests, repeats)


def timing_requests(
    histories: tuple[np.ndarray, np.ndarray, np.ndarray], n_items: int, candidates: int
) -> list[dict[str, np.ndarray]]:
    """Requests to time: (N, L) item, kind and gap histories, each with ``candidates`` of the
    ``n_items`` item rows (the same draws on every call)."""
    rng = np.random.default_rng(0)
    item, kind, gap = histories
    return [
        request_inputs(item[i], kind[i], gap[i], rng.integers(1, n_items + 1, candidates)) for i in range(len(item))
    ]


def models_ms_per_request(
    models: dict[str, SequenceModel], histories: tuple[np.ndarray, np.ndarray, np.ndarray], candidates: int
) -> dict[str, float]:
    """Each model's ``ms_per_request`` through its exported graph on the same ``timing_requests``."""
    feeds = timing_requests(histories, len(next(iter(models.values())).item_tokens) - 1, candidates)
    out = {}
    with tempfile.TemporaryDirectory(prefix="streamrec-sequence-onnx-") as tmp:
        for name, model in models.items():
            path = Path(tmp) / f"{name}.onnx"
            export_sequence_onnx(model, path, feeds[0])
            out[name] = round(ms_per_request(path, feeds), 4)
    return out


def stage_sequence(
    model: SequenceModel,
    name: str,
    directory: Path,
    catalogue: Catalogue,
    example: dict[str, np.ndarray],
    window: TrainingWindow,
    metrics: dict[str, dict[str, float]],
) -> Manifest:
    """Export (parity-checked on ``example``, a ``request_inputs``) and write the manifest beside
    the graph; the catalogue's item ids are the rows' names."""
    directory.mkdir(parents=True, exist_ok=True)
    onnx_path = directory / "model.onnx"
    diff = export_sequence_onnx(model, onnx_path, example)
    length = example["item"].shape[1]
    manifest = Manifest(
        name=name,
        version=0,
        created_at=utc_timestamp(),
        onnx_sha256=sha256_file(onnx_path),
        opset=OPSET,
        inputs=[
            *(TensorSpec(name=n, dtype="int64", shape=[1, length]) for n in INPUT_NAMES[:3]),
            TensorSpec(name="candidates", dtype="int64", shape=["candidates"]),
        ],
        outputs=[TensorSpec(name=OUTPUT_NAME, dtype="float32", shape=["candidates"])],
        features=FEATURES,
        id_maps={"items": list(catalogue.items.keys)},
        training_window=window,
        metrics=metrics,
        parity_max_abs_diff=diff,
    )
    write_manifest(directory, manifest)
    return manifest
