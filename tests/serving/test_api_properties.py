"""Property-based: requests generated from the OpenAPI spec -- valid ones and ones that break it --
never get a 5xx, and every rejection is a 4xx with a message.

(schemathesis builds the cases from the spec; hypothesis drives them. Its pytest plugin's fixture
mode does not run under pytest 9, so each operation's strategy is driven by ``@given`` here.)
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from serving.model import OnnxModel
from tests.serving.api_harness import make_app

WITH_INPUT = ["GET /v1/recommendations/{user_id}", "POST /v1/events"]
OPERATIONS = [*WITH_INPUT, "GET /healthz", "GET /readyz", "GET /metrics"]
# Negative cases break the spec's constraints, so only operations that take input have them.
CASES = [(label, GenerationMode.POSITIVE) for label in OPERATIONS] + [
    (label, GenerationMode.NEGATIVE) for label in WITH_INPUT
]


@pytest.fixture
def api_schema(cfg, processor, student_dir):
    app, _, _ = make_app(cfg, processor, model=OnnxModel.load(student_dir))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_the_spec_lists_every_operation(api_schema):
    assert sorted(op.ok().label for op in api_schema.get_all_operations()) == sorted(OPERATIONS)


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_no_server_errors_and_every_rejection_explains_itself(api_schema, label, mode):
    operation = next(op.ok() for op in api_schema.get_all_operations() if op.ok().label == label)
    statuses = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        response = case.call()
        statuses.append(response.status_code)
        assert response.status_code < 500, (case.path, case.query, case.body, response.text)
        if response.status_code >= 400:
            assert response.json()["error"].strip(), response.text

    check()
    assert statuses  # generated and sent
