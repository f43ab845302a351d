"""Plain-data conversion for snapshots: numpy arrays <-> dicts of builtins (no pickle anywhere)."""

from __future__ import annotations

from typing import Any

import numpy as np


def pack_array(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def unpack_array(d: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(d["dtype"])
    if dtype.hasobject:
        raise ValueError("object arrays are refused in snapshots")
    return np.frombuffer(d["data"], dtype=dtype).reshape(d["shape"]).copy()
