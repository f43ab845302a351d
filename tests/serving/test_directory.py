"""The worker directory: a partition's owner is the live advert that took it over last."""

import threading

from serving.directory import ADVERT_CODEC, Claim, Directory, WorkerAdvert


class Clock:
    def __init__(self, now_s: float = 1000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def advert(worker: str, ts_s: float, *claims: tuple[int, float]) -> WorkerAdvert:
    return WorkerAdvert(worker, f"http://{worker}:8080", [Claim(p, int(s * 1000)) for p, s in claims], int(ts_s * 1000))


def test_the_worker_that_took_a_partition_over_last_owns_it_even_while_the_old_owner_still_claims_it():
    clock = Clock()
    directory = Directory("me", ttl_s=6, clock=clock)
    directory.apply("a", advert("a", 999, (0, 900), (1, 900)))
    assert directory.owner(0).worker_id == "a" and directory.owner(2) is None
    directory.apply("b", advert("b", 999.5, (1, 995)))  # b was given partition 1 after a lost it
    assert directory.owner(1).worker_id == "b" and directory.owner(0).worker_id == "a"
    directory.apply("a", advert("a", 1000, (0, 900), (1, 900)))  # a, cut off, heartbeats its old claim
    assert directory.owner(1).worker_id == "b"


def test_a_silent_worker_loses_its_claims_after_the_ttl_and_a_tombstone_at_once():
    clock = Clock()
    directory = Directory("me", ttl_s=6, clock=clock)
    directory.apply("a", advert("a", 1000, (0, 900)))
    directory.apply("b", advert("b", 1000, (1, 900)))
    clock.now_s = 1006.0
    assert directory.owner(0).worker_id == "a"
    clock.now_s = 1006.5
    assert directory.owner(0) is None
    assert [a.worker_id for a in directory.workers()] == ["a", "b"]  # kept until the next message
    directory.apply("c", advert("c", 1006.5))
    assert [a.worker_id for a in directory.workers()] == ["c"]  # a and b expired
    directory.apply("c", None)
    assert directory.workers() == []


def test_adverts_read_long_after_they_were_published_are_not_kept():
    directory = Directory("me", ttl_s=6, clock=Clock(now_s=5000))
    directory.apply("crashed-last-week", advert("crashed-last-week", 1000, (0, 900)))
    assert directory.workers() == [] and directory.owner(0) is None


def test_an_older_advert_arriving_late_does_not_replace_a_newer_one():
    directory = Directory("me", ttl_s=6, clock=Clock())
    directory.apply("a", advert("a", 1000))
    directory.apply("a", advert("a", 999, (0, 900)))
    assert directory.owner(0) is None


def test_the_directory_names_this_worker_when_it_took_the_partition_over_last():
    directory = Directory("me", ttl_s=6, clock=Clock())
    directory.apply("a", advert("a", 1000, (0, 900)))
    directory.apply("me", advert("me", 1000, (0, 990)))  # a request forwarded to itself is answered there
    assert directory.owner(0).worker_id == "me"


def test_adverts_round_trip_through_the_topic_codec():
    encoder, decoder = ADVERT_CODEC
    original = advert("a", 1000, (0, 900), (3, 950))
    assert decoder.decode(encoder.encode(original)) == original


def test_an_advert_wakes_a_waiter_before_its_timeout():
    directory = Directory("me", ttl_s=6, clock=Clock())
    woke = threading.Event()

    def waiter() -> None:
        directory.wait(30)
        woke.set()

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    for _ in range(40):  # the waiter may not be waiting yet when the first advert arrives
        directory.apply("a", advert("a", 1000, (0, 900)))
        if woke.wait(0.05):
            break
    assert woke.is_set()
