"""The API's own OpenAPI schema, fuzzed by schemathesis against the app on the tests/api seed
with real tokens: whatever is asked, no answer is a 5xx, every status is one the operation
documents, every content type is one it declares, and every body conforms to its schema.

- Fuzzing: for each operation in /openapi.json, requests schemathesis makes from the schema,
  valid (positive) and invalid (negative: wrong types, broken bounds, missing or garbled
  parts, the token header among them), EXAMPLES of each. The incident routes are fuzzed also
  with an incident that exists (l-0, whose snapshot and clip are on disk), so their answers
  with a body (the detail, the file, a verdict recorded) are checked as well as their 404s.
- Coverage: schemathesis's deterministic boundary cases of every parameter (at, inside and
  past each bound, each enum value, each required part left out).
- Other callers: a read-only token (its 403s) and a service token of Leeds (no account
  behind it: its verdicts are recorded as `token:<name>`), a few valid requests of each
  operation each.

Deterministic: Hypothesis derandomised (the same requests every run, nothing kept between
runs), one seeded database for the whole test, operations in the schema's order; every
request goes through the app in-process (schemathesis's ASGI transport), no wall-clock limit.
The streaming route /v1/events is left out: its answer never ends (its own tests cover it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.strategies import SearchStrategy
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from shrinkwatch.settings import load_settings
from tests.api.conftest import Api, bearer

pytestmark = pytest.mark.services

# The schema as the app serves it (made without a database: nothing connects until a request).
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", create_app(load_settings(None)))
STREAMING = {"/v1/events"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 10  # per operation and mode: about 850 requests in all with the coverage cases
OTHER_EXAMPLES = 3
EXISTING = {"incident_id": "l-0"}


def operations() -> list[Any]:
    """Every operation of the schema but the streaming ones, in the schema's order."""
    found = [result.ok() for result in SCHEMA.get_all_operations()]
    assert found, "the schema lists no operation"
    return [operation for operation in found if operation.path not in STREAMING]


def fixed_paths(operation: Any) -> Iterator[dict[str, str] | None]:
    """The path parameters to fuzz an operation with: generated ones, and for the incident
    routes also an incident that exists."""
    yield None
    if "{incident_id}" in operation.path:
        yield EXISTING


def fuzz(strategy: SearchStrategy[Case], examples: int, send: Callable[[Case], object]) -> None:
    """Send `examples` cases of the strategy, the same ones every run."""

    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,  # a loaded machine is slow, not wrong
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def run(case: Case) -> None:
        send(case)

    run()


def sender(api: Api, token: str) -> Callable[[Case], object]:
    """Send a case to the app with the token of that name, and check the answer."""

    def send(case: Case) -> object:
        return case.call_and_validate(app=api.client.app, headers=bearer(api.tokens[token]), checks=CHECKS)

    return send


def test_the_schema_lists_the_api(api: Api) -> None:
    listed = {(operation.path, operation.method.upper()) for operation in operations()}
    assert ("/v1/incidents", "GET") in listed and ("/v1/incidents/{incident_id}/verdict", "POST") in listed
    assert len(listed) >= 13, listed
    assert api.get("/v1/incidents/l-0", "all").status_code == 200  # the existing incident is there


def test_fuzzed_requests_get_documented_answers(api: Api, subtests: pytest.Subtests) -> None:
    send = sender(api, "all")
    for operation in operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path in fixed_paths(operation):
                with subtests.test(operation=operation.label, mode=mode.value, path=path):
                    fuzz(operation.as_strategy(mode, path_parameters=path), EXAMPLES, send)


def test_boundary_cases_get_documented_answers(api: Api, subtests: pytest.Subtests) -> None:
    send = sender(api, "all")
    for operation in operations():
        with subtests.test(operation=operation.label):
            cases = list(
                SCHEMA.iter_coverage_cases(
                    operation,
                    generation_modes=list(GenerationMode),
                    generation_config=SCHEMA.config.generation_for(operation=operation),
                )
            )
            assert cases, operation.label
            for case in cases:
                send(case)


@pytest.mark.parametrize("token", ["reader", "service"])
def test_other_callers_get_documented_answers(api: Api, subtests: pytest.Subtests, token: str) -> None:
    send = sender(api, token)
    for operation in operations():
        for path in fixed_paths(operation):
            with subtests.test(operation=operation.label, path=path):
                strategy = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path)
                fuzz(strategy, OTHER_EXAMPLES, send)


def test_a_read_only_token_is_refused_a_verdict(api: Api) -> None:
    refused = api.post("/v1/incidents/l-0/verdict", "reader", {"verdict": "confirmed"})
    assert refused.status_code == 403, refused.text
