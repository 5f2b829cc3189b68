"""Security of the API and the pipeline: input limits, SSRF through process_image, CORS, job ids,
and the template's access controls (API key, usage plan, throttling, API Gateway's own errors)."""

from __future__ import annotations

import json
import time
import tomllib

import pytest
from harness import ROOT, make_image
from reliability import record

from devkit.template import Stack
from retail_pulse.logic.submit import new_job_id

GOOD_VISIT = {"store_id": "RP00001", "image_url": ["https://example.com/a.jpg"], "visit_time": "2024-03-15T10:00:00Z"}


def job(*visits: dict) -> dict:
    return {"count": len(visits), "visits": list(visits)}


def visit(**changes) -> dict:
    return {**GOOD_VISIT, **changes}


# -- input limits ------------------------------------------------------------------------------------

LIMIT_ENV = {
    "MAX_REQUEST_BYTES": "4000",
    "MAX_VISITS_PER_JOB": "3",
    "MAX_URLS_PER_VISIT": "2",
    "MAX_URL_LENGTH": "60",
    "MAX_STORE_ID_LENGTH": "10",
    "MAX_VISIT_TIME_LENGTH": "30",
}
LIMIT_BREACHES = [
    ("body over MAX_REQUEST_BYTES", json.dumps(job(visit(store_id="RP00001" + " " * 4000))), 413, "body"),
    ("visits over MAX_VISITS_PER_JOB", job(*[GOOD_VISIT] * 4), 413, "visits"),
    ("URLs over MAX_URLS_PER_VISIT", job(visit(image_url=["https://x.example/a.jpg"] * 3)), 413, "visits[0].image_url"),
    ("URL over MAX_URL_LENGTH", job(visit(image_url=["https://x.example/" + "a" * 60])), 400, "visits[0].image_url[0]"),
    ("store_id over MAX_STORE_ID_LENGTH", job(GOOD_VISIT, visit(store_id="R" * 11)), 400, "visits[1].store_id"),
    ("visit_time over MAX_VISIT_TIME_LENGTH", job(visit(visit_time="2024-03-15T10:00:00" + "0" * 20 + "Z")), 400,
     "visits[0].visit_time"),
    ("control character in store_id", job(visit(store_id="RP\x0000001")), 400, "visits[0].store_id"),
    ("lone surrogate in a URL", '{"count": 1, "visits": [{"store_id": "RP00001", "image_url": ["https://x.example/\\ud800"],'
     ' "visit_time": "2024-03-15T10:00:00Z"}]}', 400, "visits[0].image_url[0]"),
]  # fmt: skip


@pytest.mark.parametrize("breach", LIMIT_BREACHES, ids=[b[0] for b in LIMIT_BREACHES])
def test_each_limit_breach_is_a_4xx_naming_the_field_and_writes_nothing(stack, monkeypatch, breach):
    _name, body, status, field = breach
    for key, value in LIMIT_ENV.items():
        monkeypatch.setenv(key, value)
    stack.reset_caches()
    answered, response = stack.api("POST", "/api/submit", body=body)
    assert answered == status, response
    assert set(response) == {"error"} and response["error"].startswith(f"{field}:"), response
    assert stack.items() == [] and stack.queue_depth() == 0
    record("input: limit breached (body, visits, URLs, lengths, control chars)", 1)


def test_a_job_at_every_limit_is_accepted(stack, monkeypatch):
    for key, value in LIMIT_ENV.items():
        monkeypatch.setenv(key, value)
    stack.reset_caches()
    at_limit = visit(store_id="RP00001", image_url=["https://x.example/" + "a" * 42] * 2)
    assert len(at_limit["image_url"][0]) == 60
    status, body = stack.api("POST", "/api/submit", body=job(at_limit, at_limit, at_limit))
    assert status == 201, body


# -- echoed input values are bounded ----------------------------------------------------------------

ECHO_LIMIT = 64  # characters of an input value an error may show
HUGE = "9" * 3000


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        (
            "POST",
            "/api/submit",
            {"body": '{"count": 1' + "0" * 400 + ', "visits": [' + json.dumps(GOOD_VISIT) + "]}"},
            "count",
        ),
        ("POST", "/api/submit", {"body": json.dumps({"count": -(10**300), "visits": [GOOD_VISIT]})}, "count"),
        ("GET", "/api/status", {"query": {"jobid": HUGE}}, "jobid"),
        ("GET", "/api/results", {"query": {"jobid": HUGE}}, "jobid"),
        ("POST", "/api/jobs/cancel", {"query": {"jobid": HUGE}}, "jobid"),
        ("GET", "/api/visits", {"query": {"area": HUGE}}, "area"),
        ("GET", "/api/visits", {"query": {"area": "7100015", "storeid": HUGE}}, "storeid"),
        ("GET", "/api/reports/stores", {"query": {"area": HUGE}}, "area"),
    ],
    ids=["count 10**400", "count -10**300", "status", "results", "cancel", "visits area", "visits store", "report"],
)
def test_an_echoed_input_value_is_cut_to_64_characters(stack, method, path, kwargs, field):
    status, body = stack.api(method, path, **kwargs)
    assert status == 400, body
    message = body["error"]
    assert message.startswith(f"{field}: ")
    longest_run = max(len(run) for run in message.replace("-", "9").replace("0", "9").split(" "))
    assert longest_run <= ECHO_LIMIT + 1, message  # the value, then "…" when it was cut
    assert len(message) <= 160, message
    record("input: huge values (count 10**400, 3,000-character ids) echoed at most 64 characters", 1)


# -- credentials in URLs -----------------------------------------------------------------------------

SECRET = "s3cr3t-pa55"  # noqa: S105 - what must never be stored or echoed
CREDENTIAL_URLS = [
    f"http://user:{SECRET}@images.example.com/x.jpg",
    f"https://{SECRET}@images.example.com/x.jpg",  # a token as the user name
    f"HTTPS://user:{SECRET}@[2001:db8::1]:8443/x.jpg",
    f"http://user:{SECRET}@images.example.com:80@other.example.com/x.jpg",
    f"http://images.example.com\\@{SECRET}.example.com/x.jpg",  # a backslash before "@"
    "http://@images.example.com/x.jpg",  # empty userinfo: still not a plain URL
]


@pytest.mark.parametrize("url", CREDENTIAL_URLS)
def test_image_urls_with_credentials_are_400_naming_the_field_without_echoing_them(stack, image_server, url):
    good = image_server.add("/creds/ok.png", make_image("PNG", 4, 4), "image/png")
    status, body = stack.api("POST", "/api/submit", body=job(visit(image_url=[good, url])))
    assert status == 400
    assert body == {"error": "visits[0].image_url[1]: must not contain credentials (user:password@)"}
    assert SECRET not in json.dumps(body)
    assert stack.items() == [] and stack.queue_depth() == 0
    record("input: credentials (user:password@) in image or callback URLs, refused and never echoed", 1)


@pytest.mark.parametrize("url", CREDENTIAL_URLS[:3])
def test_a_callback_url_with_credentials_is_400(stack, url):
    status, body = stack.api("POST", "/api/submit", body={**job(GOOD_VISIT), "callback_url": url})
    assert status == 400
    assert body == {"error": "callback_url: must not contain credentials (user:password@)"}
    assert stack.items() == [] and stack.queue_depth() == 0
    record("input: credentials (user:password@) in image or callback URLs, refused and never echoed", 1)


def test_a_download_error_never_shows_the_credentials_of_its_url(stack, image_server):
    """Messages queued before the check (or written by hand) still never leak the secret."""
    from retail_pulse.adapters.image_download import ImageDownloader
    from retail_pulse.domain.measuring import ImageError

    downloader = ImageDownloader(1, 1, 1024, allow_private=True)
    host = image_server.base.split("://", 1)[1]
    for url in (f"http://user:{SECRET}@{host}/creds/missing.png", f"http://user:{SECRET}@10.255.255.1:9/x.png"):
        with pytest.raises(ImageError) as err:
            downloader.fetch(url, deadline=time.monotonic() + 1.5)
        assert SECRET not in str(err.value) and "user" not in str(err.value), err.value
    record("input: credentials (user:password@) in image or callback URLs, refused and never echoed", 2)


# -- SSRF through the whole pipeline ----------------------------------------------------------------


def test_private_image_hosts_are_refused_end_to_end_when_not_allowed(stack, monkeypatch, image_server):
    monkeypatch.setenv("ALLOW_PRIVATE_IMAGE_HOSTS", "false")
    stack.reset_caches()
    port = image_server.base.rsplit(":", 1)[1]
    served = image_server.add("/ssrf/real.png", make_image("PNG", 4, 4), "image/png")
    urls = [
        served,
        f"http://localhost:{port}/ssrf/real.png",
        f"http://[::1]:{port}/ssrf/real.png",
        f"http://[::ffff:127.0.0.1]:{port}/ssrf/real.png",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/a.png",
        "http://192.168.0.10/a.png",
    ]
    before = len(image_server.requests)
    job_id = stack.submit_job([visit(image_url=urls)])
    stack.drain()
    _, status = stack.api("GET", "/api/status", query={"jobid": job_id})
    _, page = stack.api("GET", "/api/results", query={"jobid": job_id, "limit": 100})
    assert status["status"] == "failed" and status["progress"]["processed"] == len(urls)
    results = page["results"]
    assert [r["image_url"] for r in results] == urls  # none lost, none doubled
    assert all(r["status"] == "failed" and "refused" in r["error"] for r in results), results
    assert len(image_server.requests) == before  # nothing reached the image server
    record("SSRF: job of private/loopback/metadata image URLs (process_image)", len(urls))


# -- job ids -----------------------------------------------------------------------------------------


def test_job_ids_carry_128_random_bits():
    ids = [new_job_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    # Every one of the 128 bit positions takes both values: no fixed part (time, counter) to guess.
    values = [int(i, 16) for i in ids]
    for bit in range(128):
        ones = sum((v >> bit) & 1 for v in values)
        assert 800 < ones < 1200, bit
    record("access: job ids guessed (2000 ids, 128 random bits each)", len(ids))


def test_status_of_a_neighbouring_id_reveals_nothing(stack):
    job_id = stack.submit_job([GOOD_VISIT])
    neighbour = f"{int(job_id, 16) ^ 1:032x}"
    status, body = stack.api("GET", "/api/status", query={"jobid": neighbour})
    assert status == 400 and job_id not in json.dumps(body)


# -- CORS --------------------------------------------------------------------------------------------


def cors_of(stack, method: str, path: str, origin: str, **kwargs) -> tuple[int, dict]:
    from harness import LambdaContext, api_event

    body = kwargs.pop("body", None)
    event = api_event(
        method, path, body=json.dumps(body) if body is not None else None, headers={"Origin": origin}, **kwargs
    )
    module = {"/api/submit": stack.submit, "/api/stores": stack.reports}.get(path, stack.status)
    response = module.lambda_handler(event, LambdaContext())
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers[key.lower()] = ", ".join(values)
    return response["statusCode"], headers


@pytest.mark.parametrize(
    "request_and_status",
    [
        ("POST", "/api/submit", {"body": job(GOOD_VISIT)}, 201),
        ("POST", "/api/submit", {"body": {"count": 1}}, 400),
        ("GET", "/api/status", {"query": {"jobid": "nope"}}, 400),
        ("GET", "/api/results", {"query": {"jobid": "x", "limit": "0"}}, 400),
        ("GET", "/api/health", {}, 200),
        ("GET", "/api/nothing-here", {}, 404),
        ("GET", "/api/stores", {"query": {"q": "corner"}}, 200),
    ],
)
def test_every_response_carries_cors_headers_for_the_configured_origin(stack, monkeypatch, request_and_status):
    method, path, kwargs, status = request_and_status
    monkeypatch.setenv("CORS_ALLOW_ORIGIN", "https://dash.example.com")
    stack.reset_caches()
    answered, headers = cors_of(stack, method, path, "https://dash.example.com", **kwargs)
    assert answered == status
    assert headers["access-control-allow-origin"] == "https://dash.example.com"
    allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "x-api-key", "idempotency-key"} <= allowed
    _, foreign = cors_of(stack, method, path, "https://evil.example.net", **kwargs)
    assert "access-control-allow-origin" not in foreign


def test_cors_origin_star_answers_any_origin(stack):
    _, headers = cors_of(stack, "GET", "/api/health", "https://anywhere.example.org")
    assert headers["access-control-allow-origin"] == "*"


# -- the template's access controls -----------------------------------------------------------------


def test_api_gateway_errors_are_json_with_cors_and_the_api_is_keyed_and_throttled():
    stack = Stack()
    api = stack.resources["Api"]["Properties"]
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        response = api["GatewayResponses"][kind]
        assert response["ResponseTemplates"] == {"application/json": '{"error": $context.error.messageString}'}
        headers = response["ResponseParameters"]["Headers"]
        assert headers["Access-Control-Allow-Origin"] == {"Fn::Sub": "'${CorsAllowOrigin}'"}
    assert api["Auth"]["ApiKeyRequired"] is True
    plan = api["Auth"]["UsagePlan"]
    assert plan["CreateUsagePlan"] == "PER_API"
    assert plan["Quota"]["Limit"] == {"Ref": "ApiQuotaPerDay"}
    assert plan["Throttle"] == {
        "RateLimit": {"Ref": "ApiThrottleRateLimit"},
        "BurstLimit": {"Ref": "ApiThrottleBurstLimit"},
    }
    [settings] = api["MethodSettings"]
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    env = stack.template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["CORS_ALLOW_ORIGIN"] == {"Ref": "CorsAllowOrigin"}
    # Only what holds no data is open: the dashboard's page and assets, the API's documentation.
    open_routes = {
        (r.method, r.path)
        for f in stack.functions(resolve_environment=False).values()
        for r in f.routes
        if not r.api_key_required
    }
    assert open_routes == {
        ("GET", "/"),
        ("GET", "/assets/{file}"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/docs"),
        ("GET", "/api/docs/swagger-ui-bundle.min.js"),
        ("GET", "/api/docs/swagger-ui.min.css"),
    }


def test_prod_sets_one_cors_origin_and_its_own_limits():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    overrides = dict(kv.split("=", 1) for kv in config["prod"]["deploy"]["parameters"]["parameter_overrides"].split())
    assert overrides["CorsAllowOrigin"].startswith("https://") and "*" not in overrides["CorsAllowOrigin"]
    assert {"ApiThrottleRateLimit", "ApiThrottleBurstLimit", "ApiQuotaPerDay"} <= set(overrides)
