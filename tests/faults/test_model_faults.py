"""Bad model artifacts announced to a serving process under HTTP load.

Guarantee under test (serving/model_updates.py): an artifact that does not verify -- truncated,
bit-flipped, a manifest that does not describe its graph, a manifest that is not JSON, an
announcement of a version that is not on disk -- is refused and counted
(streamrec_model_loads_total{outcome="refused"}), and the last good model keeps answering every
request.
"""

from __future__ import annotations

import json
import random
import threading

from offline.announce import announce_promotion
from stream.kafka.clients import make_producer
from stream.model_artifact import read_manifest, version_dir
from tests.integration.test_serving_on_broker import get, serving, wait_for  # noqa: F401 - a fixture
from tests.serving.conftest import dataset  # noqa: F401 - a fixture


def _truncate(path) -> None:
    model = path / "model.onnx"
    model.write_bytes(model.read_bytes()[: len(model.read_bytes()) // 2])


def _flip_a_byte(path) -> None:
    model = path / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))


def _misdescribe_inputs(path) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["inputs"][0]["name"] = "not_an_input_of_the_graph"
    (path / "manifest.json").write_text(json.dumps(manifest))


def _garble_manifest(path) -> None:
    (path / "manifest.json").write_bytes(b"\x00{not json")


def _remove_version(path) -> None:
    for file in path.iterdir():
        file.unlink()
    path.rmdir()


FAULTS = {
    2: ("truncated model.onnx", _truncate),
    3: ("one byte flipped", _flip_a_byte),
    4: ("manifest names inputs the graph lacks", _misdescribe_inputs),
    5: ("manifest not JSON", _garble_manifest),
    6: ("announced version missing on disk", _remove_version),
}


def test_bad_artifacts_are_refused_and_the_last_good_model_answers_every_request(serving, small_stream, fault_row):
    cfg, stack, registry, base = serving
    assert stack.scorer.version == 1
    users = sorted({e.user_id for e in small_stream[:4000]})
    responses, errors, done = [], [], threading.Event()

    def load() -> None:
        rng = random.Random(1)
        while not done.is_set():
            try:
                responses.append(get(f"{base}/v1/recommendations/{rng.choice(users)}?k=10"))
            except Exception as exc:
                errors.append(repr(exc))

    def refused() -> float:
        return stack.registry.get_sample_value("streamrec_model_loads_total", {"outcome": "refused"}) or 0

    def requests_made() -> int:
        return len(responses) + len(errors)

    client = threading.Thread(target=load)
    client.start()
    producer = make_producer(cfg.kafka)
    for version, (_, damage) in FAULTS.items():
        manifest = read_manifest(version_dir(registry.root, version))  # the announcement names the good one
        damage(version_dir(registry.root, version))
        before = refused()
        announce_promotion(producer, cfg.kafka.model_updates_topic, manifest, registry.root)
        wait_for(lambda b=before: refused() > b, what=f"version {version} ({FAULTS[version][0]}) refused")
        # Requests after the refusal, answered by whatever serves now (a fixed 0.3 s sleep made their
        # number depend on the machine's speed).
        made = requests_made()
        wait_for(lambda m=made: requests_made() >= m + 10, what=f"requests after version {version} was refused")
    done.set()
    client.join()

    answered_by_v1 = sum(1 for status, body in responses if status == 200 and body["model_version"] == 1)
    row = fault_row(
        f"{len(FAULTS)} bad model artifacts announced under HTTP load (events = requests)",
        "refused and counted; the last good model answers every request",
        len(responses) + len(errors),
        answered_by_v1,
        0,
        len(responses) + len(errors) - answered_by_v1,
    )
    not_v1 = [body for status, body in responses if status != 200 or body["model_version"] != 1]
    assert row.held and errors == [] and len(responses) > 20, (row, errors[:3], not_v1[:3])
    assert stack.scorer.version == 1 and refused() == len(FAULTS)
