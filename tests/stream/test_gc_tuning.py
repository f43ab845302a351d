"""The worker's young generation holds a batch, and the process gets its own setting back."""

import gc

import pytest

from stream.gc_tuning import young_generation_for


@pytest.fixture
def threshold():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_young_generation_holds_two_batches_and_is_restored(threshold):
    gc.set_threshold(700, 10, 10)
    with young_generation_for(5000):
        assert gc.get_threshold() == (10_000, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_larger_setting_of_the_process_is_kept(threshold):
    gc.set_threshold(50_000, 20, 5)
    with young_generation_for(5000):
        assert gc.get_threshold() == (50_000, 20, 5)
    assert gc.get_threshold() == (50_000, 20, 5)


def test_restored_when_the_worker_loop_raises(threshold):
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), young_generation_for(5000):
        raise RuntimeError("the loop died")
    assert gc.get_threshold() == (700, 10, 10)
