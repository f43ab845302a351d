"""A registered model, loaded for scoring with onnxruntime and numpy only (never torch).

``OnnxModel.load`` trusts nothing on disk: the manifest must decode, the ONNX file must match the
manifest's checksum, and the graph's inputs and outputs must be the ones the manifest declares.
Anything else raises ``ArtifactError``, and whoever holds the current model keeps it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from stream.model_artifact import ArtifactError, Manifest, verify_artifact


def onnx_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """A CPU session with ``threads`` intra-op threads and no inter-op pool: the one configuration
    models are scored with, in serving and in the offline checks (parity, speed, int8)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OnnxModel:
    def __init__(self, manifest: Manifest, session: ort.InferenceSession, directory: Path) -> None:
        self.manifest = manifest
        self.session = session
        self.directory = directory
        self.input_names = [t.name for t in manifest.inputs]
        self.output_name = manifest.outputs[0].name

    @classmethod
    def load(cls, directory: Path, threads: int = 1) -> OnnxModel:
        manifest = verify_artifact(directory)
        try:
            sess = onnx_session(directory / manifest.onnx_file, threads)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
            raise ArtifactError(f"{directory}: onnxruntime cannot load the model ({exc}); re-export it") from exc
        graph_inputs = [i.name for i in sess.get_inputs()]
        graph_outputs = [o.name for o in sess.get_outputs()]
        declared_inputs = [t.name for t in manifest.inputs]
        if graph_inputs != declared_inputs or manifest.outputs[0].name not in graph_outputs:
            raise ArtifactError(
                f"{directory}: graph inputs {graph_inputs} / outputs {graph_outputs} do not match "
                f"the manifest ({declared_inputs}); re-export the model"
            )
        return cls(manifest, sess, directory)

    def score(self, inputs: dict[str, np.ndarray]) -> NDArray[np.float32]:
        """Pointwise: named int64 inputs with a common batch axis -> (batch,) click logits."""
        feed = {n: np.ascontiguousarray(inputs[n], dtype=np.int64) for n in self.input_names}
        logits: NDArray[np.float32] = self.session.run([self.output_name], feed)[0]
        return logits
