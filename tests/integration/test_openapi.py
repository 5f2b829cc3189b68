"""The OpenAPI document: generated from the handlers, committed, served with Swagger UI (no CDN)."""

from __future__ import annotations

import json
import re

import pytest
from harness import ROOT, LambdaContext, api_event

from retail_pulse.api.responses import field_path
from retail_pulse.api.schema import JobStatus, ResultsPage, SubmitAccepted
from tools import openapi


def test_committed_document_is_what_the_handlers_generate():
    # Fails after a route, parameter or response model changes until `make openapi` is run.
    assert openapi.DOCUMENT.read_text() == openapi.build_document()
    assert openapi.ROOT_LINK.resolve() == openapi.DOCUMENT.resolve()


def test_document_describes_every_route_with_its_error_responses():
    document = json.loads((ROOT / "openapi.json").read_text())
    paths = document["paths"]
    submit = paths["/api/submit"]["post"]
    assert sorted(submit["responses"]) == ["201", "400", "409", "413", "503"]
    inline, manifest = submit["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert inline["required"] == ["count", "visits"]
    assert inline["properties"]["visits"]["items"]["required"] == ["store_id", "image_url", "visit_time"]
    assert manifest["required"] == ["manifest"]  # or an uploaded manifest (POST /api/uploads)
    assert sorted(paths["/api/results/export"]) == ["get", "post"]
    assert "202" in paths["/api/results/export"]["post"]["responses"]
    for path in ("/api/status", "/api/results"):
        assert sorted(paths[path]["get"]["responses"]) == ["200", "400", "503"]
    # A route DynamoDB refuses past its budget answers 503 (api/responses.py): documented beside its 400.
    for path, methods in paths.items():
        for method, operation in methods.items():
            if "400" in operation["responses"]:
                assert "Retry-After" in operation["responses"]["503"]["description"], (method, path)
    limit = next(p for p in paths["/api/results"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 1000)
    for route in ("/api/health", "/api/openapi.json", "/api/docs"):
        assert "200" in paths[route]["get"]["responses"]
    # Validation failures are this API's 400, never Powertools' 422.
    assert "422" not in json.dumps(paths)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def call_status(path: str, query: dict | None = None) -> dict:
    event = api_event("GET", path, query=query)
    event["requestContext"]["stage"] = "dev"  # the stage URL: /dev/api/...
    return event


def test_served_document_points_at_the_stage_it_came_through(stack):
    response = stack.status.lambda_handler(call_status("/api/openapi.json"), LambdaContext())
    assert response["statusCode"] == 200
    served = json.loads(response["body"])
    committed = json.loads((ROOT / "openapi.json").read_text())
    assert served["servers"] == [{"url": "/dev"}]
    assert served["paths"] == committed["paths"]


def test_swagger_ui_loads_its_assets_from_this_api(stack):
    response = stack.status.lambda_handler(call_status("/api/docs"), LambdaContext())
    assert response["statusCode"] == 200
    assert response["multiValueHeaders"]["Content-Type"] == ["text/html"]
    page = response["body"]
    sources = re.findall(r"(?:src|href)='([^']+)'", page)
    assert sources == ["/dev/api/docs/swagger-ui.min.css", "/dev/api/docs/swagger-ui-bundle.min.js"]
    assert '"/api/submit"' in page  # the document is inlined

    for asset, content_type, start in (
        ("swagger-ui-bundle.min.js", "text/javascript", "/*! For license information"),
        ("swagger-ui.min.css", "text/css", ".swagger-ui"),
    ):
        served = stack.status.lambda_handler(call_status(f"/api/docs/{asset}"), LambdaContext())
        assert served["statusCode"] == 200
        assert served["multiValueHeaders"]["Content-Type"] == [content_type]
        assert served["multiValueHeaders"]["Cache-Control"] == ["public, max-age=86400"]
        assert served["body"].lstrip().startswith(start)


def test_real_responses_match_the_documented_models(stack):
    status, accepted = stack.api(
        "POST",
        "/api/submit",
        body={
            "count": 1,
            "visits": [{"store_id": "NOPE1", "image_url": ["https://x/a.jpg"], "visit_time": "2024-03-15T10:00:00Z"}],
        },
    )
    assert status == 201
    SubmitAccepted.model_validate(accepted)
    _, job = stack.api("GET", "/api/status", query={"jobid": accepted["job_id"]})
    assert JobStatus.model_validate(job).error[0].store_id == "NOPE1"
    _, page = stack.api("GET", "/api/results", query={"jobid": accepted["job_id"]})
    assert ResultsPage.model_validate(page).results[0].status == "failed"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"jobid": "x", "limit": "ten"}, "limit: input should be a valid integer"),
        ({"jobid": "x", "limit": "0"}, "limit: input should be greater than or equal to 1"),
        ({"limit": "5"}, "jobid: required"),
    ],
)
def test_parameter_validation_keeps_the_400_field_message(stack, query, message):
    status, body = stack.api("GET", "/api/results", query=query)
    assert status == 400
    assert body["error"].startswith(message), body


def test_field_path_formats_nested_locations():
    assert field_path(("body", "visits", 2, "image_url", 0)) == "visits[2].image_url[0]"
    assert field_path(("query", "limit")) == "limit"
    assert field_path(()) == "request"
