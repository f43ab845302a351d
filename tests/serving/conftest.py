"""Serving fixtures: a partition's state fed from a small synthetic stream, and staged student models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from offline.export import stage
from offline.features import ContentTables
from offline.pipeline import model_sizes
from offline.registry import Registry
from offline.samples import build_dataset
from offline.student import Student
from stream.processor import PartitionProcessor


@pytest.fixture(scope="session")
def dataset(small_stream):
    return build_dataset(small_stream)


@pytest.fixture
def processor(cfg, small_stream) -> PartitionProcessor:
    proc = PartitionProcessor(cfg)
    for event in small_stream:
        proc.process(event)
    return proc


def stage_student(dataset, directory: Path, seed: int = 0) -> Path:
    """An untrained student over the stream's catalogue, exported and parity-checked."""
    tables = ContentTables(dataset.catalogue)
    torch.manual_seed(seed)
    student = Student(*model_sizes(dataset)).eval()
    rows = tables.arrays(dataset.test.user[:256], dataset.test.item[:256], dataset.test.recent[:256])
    stage(
        student,
        "student",
        directory,
        dataset.catalogue,
        tables,
        rows,
        dataset.window,
        dataset.events,
        {"validation": {"ndcg@10": 0.1}},
    )
    return directory


@pytest.fixture(scope="session")
def student_dir(dataset, tmp_path_factory) -> Path:
    return stage_student(dataset, tmp_path_factory.mktemp("student"))


def registry_with_versions(dataset, root: Path, staging: Path, versions: int) -> Registry:
    """A registry holding ``versions`` differently seeded students; the first is current."""
    registry = Registry(root)
    for n in range(versions):
        registry.register(stage_student(dataset, staging / f"v{n + 1}", seed=n))
        if n == 0:  # current before the others arrive: retention keeps the current version
            registry.promote(1, None)
    return registry
