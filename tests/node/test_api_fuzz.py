"""The local API fuzzed against its own OpenAPI document (schemathesis).

The document comes from GET /openapi.json of a real daemon; schemathesis generates requests for
every operation from it, valid ones and ones that break the schema, sends them over HTTP to that
daemon, and checks each answer: no 500, a status the operation declares, a declared content
type, a body of the declared schema, and a 4xx for what breaks the schema. A route whose
`raises=` misses an error it can answer fails here.

The daemon holds a project of ours with an accepted contribution in an anchored and funded
epoch, so that generated requests do not all stop at a 404. The fuzzer runs in a worker thread (its HTTP client blocks) while the
daemon answers on this test's event loop.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import trio
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.node.test_api import call, daemon

# Per operation and per mode (valid data, data that breaks the schema): about 30 operations,
# so some 1,200 requests in all.
EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def fuzz(
    document: dict[str, Any], base_url: str, token: str, known: dict[str, str]
) -> tuple[list[str], dict[str, Counter[int]]]:
    """Returns the failures found over every operation of `document`, one line each, and the
    statuses each operation answered.

    Each operation is fuzzed with valid data and with data that breaks its schema; one that
    names a record (in its path or its body) also with the ids of `known` records, which reach
    deeper than a random id would (the epochs of a project, a contribution's share).
    """
    schema = schemathesis.openapi.from_dict(document)
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    answered: dict[str, Counter[int]] = defaultdict(Counter)
    for result in schema.get_all_operations():
        operation = result.ok()
        ids = {name: value for name, value in known.items() if f"{{{name}}}" in operation.path}
        body = document["paths"][operation.path][operation.method.lower()].get("requestBody")
        # An upload's body is raw bytes (application/octet-stream): no fields.
        json_body = (body or {}).get("content", {}).get("application/json")
        fields = set(json_body["schema"]["properties"]) if json_body else set()
        passes = [
            ("valid", operation.as_strategy(GenerationMode.POSITIVE)),
            ("invalid", operation.as_strategy(GenerationMode.NEGATIVE)),
        ]
        if ids or fields & set(known):
            strategy = operation.as_strategy(path_parameters=ids or None)
            passes.append(("known", strategy.map(partial(_with_ids, known=known))))
        for name, strategy in passes:

            @settings(
                max_examples=EXAMPLES,
                deadline=timedelta(seconds=5),
                derandomize=True,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def check(case: Any) -> None:
                response = case.call(base_url=base_url, headers=headers, timeout=30)
                answered[case.operation.label][response.status_code] += 1
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                check()
            except (Exception, FailureGroup) as exc:  # FailureGroup: a BaseExceptionGroup
                failures.append(f"{operation.label} ({name}): {exc}")
    return failures, answered


def _with_ids(case: Any, known: dict[str, str]) -> Any:
    """Returns a case whose body names the known records where it names any."""
    if isinstance(case.body, dict):
        for name in set(case.body) & set(known):
            case.body[name] = known[name]
    return case


@pytest.mark.slow
async def test_the_api_answers_as_its_openapi_document_says(tmp_path: Path) -> None:
    # Bounded generously: some 60 operations of ~60 requests each, on 2 shared cores.
    with trio.fail_after(300):
        async with daemon(tmp_path / "a") as (_, client):
            # A profile, so that matching answers in full rather than 404.
            await call(client.set_profile, name="Fuzz", skills=["writing"])
            pid = (await call(client.post_project, name="docs", title="Docs"))["project_id"]
            work = await call(
                client.contribute, project_id=pid, summary="s", evidence_uri="https://example.org/s"
            )
            await call(client.accept, work["id"], 10, epoch=0)
            await call(client.anchor, pid, 0)
            await call(client.fund, pid, 0, 10**18)
            document = await call(client.openapi)
            start = trio.current_time()
            known = {"project_id": pid, "contribution_id": work["id"], "epoch": "0"}
            failures, answered = await trio.to_thread.run_sync(
                fuzz, document, client.base_url, client.token, known
            )
            took = trio.current_time() - start
    for label, statuses in sorted(answered.items()):
        print(label, dict(statuses))
    assert not failures, "\n\n".join(failures)
    # Every operation was reached past the token and Host checks, and answered some requests
    # in full: a fuzzer turned away at the door would find nothing.
    operations = sum(len(methods) for methods in document["paths"].values())
    assert len(answered) == operations
    for label, statuses in answered.items():
        assert not set(statuses) & {401, 421}, (label, statuses)
        assert sum(statuses.values()) >= EXAMPLES, (label, statuses)
    assert sum(s[200] for s in answered.values()) > 100, answered
    # The anchored epoch was reached: its kept tree, and an audit of it.
    epoch = "/v1/projects/{project_id}/epochs/{epoch}"
    assert answered[f"GET {epoch}/tree"][200] and answered[f"GET {epoch}/audit"][200]
    assert answered["GET /v1/match"][200]
    print(f"{sum(map(sum, (s.values() for s in answered.values())))} requests in {took:.1f} s")
