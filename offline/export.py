"""Student (or teacher) -> ONNX file + manifest in a staging directory, checked before it leaves.

Every export runs the parity check: onnxruntime and torch score the same held-out rows and the
largest absolute difference of the click logits must stay under ``PARITY_TOLERANCE``; otherwise the
export raises and nothing is staged. The registry then verifies the checksum on registration.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from offline.features import (
    INPUT_NAMES,
    ITEM_TOKEN_WIDTH,
    USER_TOKEN_WIDTH,
    ContentTables,
)
from offline.samples import Catalogue
from offline.teacher import ClickLogit
from serving.model import onnx_session
from stream.model_artifact import (
    Manifest,
    TensorSpec,
    TrainingWindow,
    sha256_file,
    utc_timestamp,
    write_manifest,
)

OPSET = 17
PARITY_TOLERANCE = 1e-4
OUTPUT_NAME = "click_logit"
FEATURES = {
    "user": "user index (id_maps.users[index - 1]; 0 = unknown user)",
    "item": "item index (id_maps.items[index - 1]; 0 = unknown item)",
    "recent": "the user's last clicked item indices, newest first, 0-padded",
    "item_tokens": "the item's content token indices (category, tags; id_maps.item_tokens), 0-padded",
    "user_tokens": "the user's attribute token indices (id_maps.user_tokens), 0-padded",
}


class ExportError(RuntimeError):
    """An exported graph disagreed with torch: nothing was staged."""


def export_onnx(model: nn.Module, path: Path, example: dict[str, np.ndarray]) -> None:
    """Trace the click logit with a dynamic batch axis at a pinned opset."""
    model.eval()
    args = tuple(torch.from_numpy(np.ascontiguousarray(example[n])) for n in INPUT_NAMES)
    torch.onnx.export(
        ClickLogit(model).eval(),
        args,
        str(path),
        input_names=list(INPUT_NAMES),
        output_names=[OUTPUT_NAME],
        dynamic_axes={**{n: {0: "batch"} for n in INPUT_NAMES}, OUTPUT_NAME: {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )


def parity(model: nn.Module, path: Path, rows: dict[str, np.ndarray]) -> float:
    """Largest |torch - onnxruntime| click logit over ``rows``."""
    with torch.no_grad():
        expected = (
            ClickLogit(model).eval()(*(torch.from_numpy(np.ascontiguousarray(rows[n])) for n in INPUT_NAMES)).numpy()
        )
    got = onnx_session(path).run([OUTPUT_NAME], {n: np.ascontiguousarray(rows[n]) for n in INPUT_NAMES})[0]
    return float(np.max(np.abs(expected - got)))


def median_ms(path: Path, feeds: list[dict[str, np.ndarray]], repeats: int) -> float:
    """Median milliseconds of one onnxruntime call (one thread) over ``repeats`` passes of ``feeds``,
    after one warm-up call."""
    sess = onnx_session(path, threads=1)
    sess.run([OUTPUT_NAME], feeds[0])  # warm-up
    times = []
    for _ in range(repeats):
        for feed in feeds:
            t = time.perf_counter()
            sess.run([OUTPUT_NAME], feed)
            times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times)


def ms_per_1000(path: Path, rows: dict[str, np.ndarray], repeats: int = 30) -> float:
    """Median milliseconds to score the first 1,000 of ``rows`` with onnxruntime on one thread."""
    return median_ms(path, [{n: np.ascontiguousarray(rows[n][:1000]) for n in INPUT_NAMES}], repeats)


def require_parity(diff: float, path: Path, refused: str) -> None:
    """Delete ``path`` and raise ``ExportError`` (ending ``refused``) if torch and onnxruntime differ
    by more than ``PARITY_TOLERANCE`` (``diff``, their largest absolute difference)."""
    if not diff <= PARITY_TOLERANCE:
        path.unlink()
        raise ExportError(f"onnxruntime differs from torch by {diff:.2e} (> {PARITY_TOLERANCE:g}); {refused}")


def stage(
    model: nn.Module,
    name: str,
    directory: Path,
    catalogue: Catalogue,
    tables: ContentTables,
    held_out: dict[str, np.ndarray],
    window: tuple[int, int],
    events: int,
    metrics: dict[str, dict[str, float]],
) -> Manifest:
    """Export, check parity on ``held_out`` rows, and write the manifest beside the ONNX file.

    The manifest carries the catalogue's own ids and token tables (the training window's); serving
    maps any other id to index 0 and a new item to its category token, as ``tables`` does offline.
    """
    directory.mkdir(parents=True, exist_ok=True)
    onnx_path = directory / "model.onnx"
    export_onnx(model, onnx_path, held_out)
    diff = parity(model, onnx_path, held_out)
    require_parity(diff, onnx_path, "not staged")
    recent_len = held_out["recent"].shape[1]
    widths = {
        "user": [],
        "item": [],
        "recent": [recent_len],
        "item_tokens": [ITEM_TOKEN_WIDTH],
        "user_tokens": [USER_TOKEN_WIDTH],
    }
    manifest = Manifest(
        name=name,
        version=0,
        created_at=utc_timestamp(),
        onnx_sha256=sha256_file(onnx_path),
        opset=OPSET,
        inputs=[TensorSpec(name=n, dtype="int64", shape=["batch", *widths[n]]) for n in INPUT_NAMES],
        outputs=[TensorSpec(name=OUTPUT_NAME, dtype="float32", shape=["batch"])],
        features=FEATURES,
        id_maps={
            "users": catalogue.users.keys,
            "items": catalogue.items.keys,
            "item_tokens": catalogue.item_tokens.keys,
            "user_tokens": catalogue.user_tokens.keys,
        },
        training_window=TrainingWindow(start_ts_ms=window[0], end_ts_ms=window[1], events=events),
        metrics=metrics,
        parity_max_abs_diff=diff,
        extra={
            "item_token_table": tables.model_item_tokens.tolist(),
            "user_token_table": tables.model_user_tokens.tolist(),
        },
    )
    write_manifest(directory, manifest)
    return manifest
