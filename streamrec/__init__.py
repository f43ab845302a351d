"""streamrec: a streaming real-time recommender (Kafka events -> online learners -> a distilled ONNX scorer)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("streamrec")
except PackageNotFoundError:  # a source tree on PYTHONPATH that was never installed has no metadata
    __version__ = "0+unknown"
