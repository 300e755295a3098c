from __future__ import annotations

from gateway.app import ROUTE_TABLE
from gateway.openapi import SPEC


def test_the_description_covers_exactly_the_routes() -> None:
    described = {
        (path, method.upper())
        for path, item in SPEC["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert described == {(path, method) for path, method, _, _ in ROUTE_TABLE}


def test_every_operation_documents_its_errors_and_rate_limit() -> None:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            statuses = set(operation["responses"])
            assert "429" in statuses, (path, method)
            if operation.get("security") != []:
                assert "401" in statuses, (path, method)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
