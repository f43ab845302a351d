"""The HTTP API: answers, and every rejection a 4xx with a one-line message."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.model import OnnxModel
from stream.events import Event, EventCodec
from stream.kafka.partitioner import partition_for
from tests.serving.api_harness import Owner, make_app

PATH = "/v1/recommendations/{user_id}"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(cfg, processor, student_dir):
    app, metrics, ingest = make_app(cfg, processor, model=OnnxModel.load(student_dir))
    client = TestClient(app)
    client.metrics, client.ingest = metrics, ingest
    return client


def a_known_user(processor) -> str:
    return processor.state.users.keys[next(iter(processor.state.seen))]


def valid_event(**changes) -> bytes:
    fields = dict(event_id="api-1", ts=1_767_225_600_000, user_id="u1", item_id="i1", type="click") | changes
    return EventCodec.encode(Event(**fields))


def test_recommendations_name_the_model_version_and_honour_k(client, processor):
    r = client.get(f"/v1/recommendations/{a_known_user(processor)}", params={"k": 7})
    body = r.json()
    assert r.status_code == 200 and len(body["items"]) == 7 and body["model_version"] is not None


@pytest.mark.parametrize("query", [{"k": 0}, {"k": 101}, {"k": "ten"}, {"exclude": ""}])
def test_bad_parameters_get_422_with_a_message(client, query):
    r = client.get("/v1/recommendations/u1", params=query)
    assert r.status_code == 422 and r.json()["error"]


def test_a_user_of_a_partition_owned_elsewhere_gets_421_naming_the_partition(cfg, processor):
    user = next(u for u in (f"user-{n}" for n in range(100)) if partition_for(u, 2) == 1)
    app, _, _ = make_app(cfg, processor, owner=Owner(processor, count=2, owned=(0,)))
    r = TestClient(app).get(f"/v1/recommendations/{user}")
    assert r.status_code == 421 and r.json()["partition"] == 1 and "another worker" in r.json()["error"]


def test_before_any_partition_is_assigned_the_api_is_not_ready(cfg, processor):
    app, _, _ = make_app(cfg, processor, owner=Owner(processor, owned=()))
    client = TestClient(app)
    assert client.get("/v1/recommendations/u1").status_code == 503
    assert client.get("/readyz").status_code == 503 and client.get("/healthz").status_code == 200


class ClosedOwner(Owner):
    """A worker shutting down: its consumer is closed, so the partition count cannot be read."""

    def partition_count(self) -> int:
        raise RuntimeError("Consumer closed")


def test_a_worker_that_cannot_read_the_partition_count_answers_a_retryable_503(cfg, processor):
    app, _, _ = make_app(cfg, processor, owner=ClosedOwner(processor))
    r = TestClient(app, raise_server_exceptions=False).get("/v1/recommendations/u1")
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and "partition count" in r.json()["error"]


def test_a_valid_event_is_accepted_and_produced(client):
    r = client.post("/v1/events", content=valid_event())
    assert r.status_code == 202 and r.json()["event_id"] == "api-1"
    assert client.ingest.accepted == [valid_event()]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "malformed_json"),
        (valid_event().replace(b'"click"', b'"purchase"'), 422, "schema"),
        (b'{"v":2,' + valid_event()[1:], 422, "unsupported_version"),
        (b'{"pad": "' + b"x" * 9000 + b'"}', 413, "limit"),
    ],
)
def test_invalid_events_are_refused_with_the_reason_and_nothing_is_produced(client, body, status, reason):
    r = client.post("/v1/events", content=body)
    assert r.status_code == status and reason in r.json()["error"]
    assert client.ingest.accepted == []


def test_request_latency_is_recorded_by_route_template_never_by_user(client):
    client.get("/v1/recommendations/some-user")
    text = client.get("/metrics").text
    assert 'route="/v1/recommendations/{user_id}"' in text and "some-user" not in text
    assert "streamrec_scoring_duration_seconds_bucket" in text


def test_the_committed_openapi_document_is_the_apps(client):
    committed = json.loads((ROOT / "serving" / "openapi.json").read_text())
    assert committed == client.get("/openapi.json").json(), (
        "regenerate it: python -m serving.api > serving/openapi.json"
    )


def test_with_a_token_configured_v1_requires_it_and_probes_stay_open(cfg, processor):
    from tests.conftest import with_section

    app, _, ingest = make_app(with_section(cfg, "serving", api_token="s3cret"), processor)
    client = TestClient(app)
    user = a_known_user(processor)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic czNjcmV0"}):
        r = client.get(f"/v1/recommendations/{user}", headers=headers)
        assert r.status_code == 401 and "bearer token" in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"
        assert client.post("/v1/events", content=valid_event(), headers=headers).status_code == 401
    assert ingest.accepted == []  # refused before the body was read, nothing produced
    good = {"Authorization": "Bearer s3cret"}
    assert client.get(f"/v1/recommendations/{user}", headers=good).status_code == 200
    assert client.post("/v1/events", content=valid_event(), headers=good).status_code == 202
    for probe in ("/healthz", "/readyz", "/metrics"):  # kubelets and Prometheus carry no token
        assert client.get(probe).status_code == 200


def test_without_a_token_the_api_is_open_but_the_spec_documents_the_scheme(client):
    assert client.get("/v1/recommendations/nobody-yet").status_code in (200, 421)
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_the_configured_k_and_max_k_bound_the_parameter_and_the_spec(cfg, processor):
    from tests.conftest import with_section

    app, _, _ = make_app(with_section(cfg, "serving", k=3, max_k=5), processor)
    client = TestClient(app)
    user = a_known_user(processor)
    assert len(client.get(f"/v1/recommendations/{user}").json()["items"]) == 3
    assert client.get(f"/v1/recommendations/{user}", params={"k": 6}).status_code == 422
    k = next(p for p in client.get("/openapi.json").json()["paths"][PATH]["get"]["parameters"] if p["name"] == "k")
    assert (k["schema"]["default"], k["schema"]["maximum"]) == (3, 5)
