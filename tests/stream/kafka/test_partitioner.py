"""The routing function agrees with Kafka's murmur2 partitioner (Kafka's own test vectors)."""

import pytest

from stream.kafka.partitioner import murmur2, partition_for


@pytest.mark.parametrize(
    ("key", "signed_hash"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_kafkas_utils_test_vectors(key, signed_hash):
    assert murmur2(key) == signed_hash & 0xFFFFFFFF


def test_partition_is_the_positive_hash_modulo_the_partition_count():
    assert partition_for("foobar", 4) == (-790332482 & 0x7FFFFFFF) % 4
    assert {partition_for(f"u{n}", 4) for n in range(100)} == {0, 1, 2, 3}
