"""Clients through the local stack, as on AWS: two API keys (two clients) and an admin key on the keyed
stack. Each client sees only its own jobs on every route that names a job, an export or an upload,
whether it asks by an id of the other's, a guessed id, or a token from the other's listing; the admin
key sees both. The same through the handlers on moto: tests/integration/test_tenants.py."""

from __future__ import annotations

import secrets
import time

import pytest
import requests
from harness import make_image
from reliability import record

from local_stack.proxy_event import api_key_id

from .conftest import ADMIN_API_KEY, API_KEY, SECOND_API_KEY

T = "2024-03-15T10:00:00Z"
JOB_ROUTES = (
    ("GET", "/api/status", {}),
    ("GET", "/api/results", {}),
    ("GET", "/api/results", {"order": "processed"}),
    ("POST", "/api/results/export", {}),
    ("POST", "/api/jobs/pause", {}),
    ("POST", "/api/jobs/resume", {}),
    ("POST", "/api/jobs/cancel", {}),
    ("POST", "/api/jobs/retry", {}),
)


class Client:
    """One API key's view of the stack."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.headers["x-api-key"] = key

    def call(self, method: str, path: str, body: dict | None = None, **params) -> requests.Response:
        return self.http.request(method, self.url + path, params=params, json=body, timeout=60)

    def submit(self, visits: list[dict]) -> str:
        response = self.call("POST", "/api/submit", {"count": len(visits), "visits": visits})
        assert response.status_code == 201, response.text
        return response.json()["job_id"]

    def wait(self, job_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.call("GET", "/api/status", jobid=job_id).json()
            if body["status"] not in ("ongoing", "paused"):
                return body
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still live")

    def jobs(self, **params) -> list[str]:
        out, token = [], None
        while True:
            response = self.call("GET", "/api/jobs", **params, **({"next_token": token} if token else {}))
            assert response.status_code == 200, response.text
            out += [j["job_id"] for j in response.json()["jobs"]]
            token = response.json()["next_token"]
            if not token:
                return out


@pytest.fixture
def clients(keyed_stack):
    keys = {"a": API_KEY, "b": SECOND_API_KEY, "admin": ADMIN_API_KEY}
    return {name: Client(keyed_stack.url, key) for name, key in keys.items()}


def test_each_key_sees_only_its_own_jobs_on_every_route(clients, image_server):
    a, b, admin = clients["a"], clients["b"], clients["admin"]
    good = image_server.add("/tenants-e2e/ok.jpg", make_image("JPEG", 40, 30))
    missing = image_server.url("/tenants-e2e/missing.jpg")
    before = {name: store_images(c, "RP00002") for name, c in clients.items()}
    theirs = a.submit([{"store_id": "RP00002", "image_url": [good, missing], "visit_time": T}])
    assert a.wait(theirs)["status"] == "failed"  # one image missing: retryable, with results to read
    mine = b.submit([{"store_id": "RP00003", "image_url": [good], "visit_time": T}])
    assert b.wait(mine)["status"] == "completed"
    guessed = [secrets.token_hex(16) for _ in range(5)]
    cases = 0
    for method, path, extra in JOB_ROUTES:
        unknown = b.call(method, path, jobid=guessed[0], **extra)
        assert unknown.status_code == 400, (path, unknown.text)
        for job_id in [theirs, *guessed[1:]]:
            response = b.call(method, path, jobid=job_id, **extra)
            assert response.status_code == 400, (path, response.text)
            assert response.json()["error"].replace(job_id, "ID") == unknown.json()["error"].replace(guessed[0], "ID")
            cases += 1
    # Nothing of A's moved: not retried, not exported by B's calls; its results are still A's to read.
    status = a.call("GET", "/api/status", jobid=theirs).json()
    assert status["status"] == "failed" and "retried_by" not in status
    assert len(a.call("GET", "/api/results", jobid=theirs).json()["results"]) == 2
    # Listings: each its own (a token of A's refused to B), the admin both.
    listed = {name: set(c.jobs()) for name, c in clients.items()}
    assert theirs in listed["a"] and theirs not in listed["b"]
    assert mine in listed["b"] and mine not in listed["a"]
    assert {theirs, mine} <= listed["admin"]
    a.submit([{"store_id": "NOPE1", "image_url": [good], "visit_time": T}])  # A has two jobs: a second page
    token = a.call("GET", "/api/jobs", limit=1).json()["next_token"]
    refused = b.call("GET", "/api/jobs", limit=1, next_token=token)
    assert refused.status_code == 400 and refused.json()["error"].startswith("next_token"), refused.text
    for job_id, images_in_job in ((theirs, 2), (mine, 1)):
        assert admin.call("GET", "/api/status", jobid=job_id).status_code == 200
        assert len(admin.call("GET", "/api/results", jobid=job_id).json()["results"]) == images_in_job
    # Reports: A's two images count in A's and the admin's store report, not in B's.
    moved = {name: store_images(c, "RP00002") - before[name] for name, c in clients.items()}
    assert moved == {"a": 2, "b": 0, "admin": 2}, moved
    record("tenants (local stack, 2 keys): another client's or a guessed job id on every job route", cases)


def store_images(client: Client, store_id: str) -> int:
    response = client.call("GET", "/api/reports/stores", area="7100015", storeid=store_id)
    assert response.status_code == 200, response.text
    return response.json()["stores"][0]["images"]


def test_exports_and_uploads_are_their_clients(clients, image_server):
    a, b, admin = clients["a"], clients["b"], clients["admin"]
    good = image_server.add("/tenants-e2e/export.jpg", make_image("JPEG", 20, 10))
    job_id = a.submit([{"store_id": "RP00001", "image_url": [good], "visit_time": T}])
    a.wait(job_id)
    export_id = a.call("POST", "/api/results/export", jobid=job_id).json()["export_id"]
    deadline = time.monotonic() + 60
    while a.call("GET", "/api/results/export", export_id=export_id).json()["state"] == "running":
        assert time.monotonic() < deadline, "export still running"
        time.sleep(0.2)
    ready = a.call("GET", "/api/results/export", export_id=export_id).json()
    assert ready["state"] == "ready" and requests.get(ready["url"], timeout=30).status_code == 200
    theirs = b.call("GET", "/api/results/export", export_id=export_id)
    assert theirs.status_code == 400 and "url" not in theirs.json()
    assert admin.call("GET", "/api/results/export", export_id=export_id).json()["state"] == "ready"
    # A's upload, through its presigned URL as a client would; B cannot submit it, A can.
    created = a.call("POST", "/api/uploads").json()
    manifest = f"store_id,image_url,visit_time\nRP00001,{good},{T}\n".encode()
    assert requests.put(created["upload_url"], data=manifest, timeout=30).status_code == 200
    refused = b.call("POST", "/api/submit", {"manifest": created["upload_id"]})
    assert refused.status_code == 400 and "no file uploaded" in refused.json()["error"], refused.text
    accepted = a.call("POST", "/api/submit", {"manifest": created["upload_id"]})
    assert accepted.status_code == 201, accepted.text
    assert a.wait(accepted.json()["job_id"])["status"] == "completed"
    record("tenants (local stack, 2 keys): another client's export id or upload id", 2)


def test_the_banner_names_each_client_and_the_admin(keyed_stack):
    ids = {api_key_id(k) for k in (API_KEY, SECOND_API_KEY, ADMIN_API_KEY)}
    assert len(ids) == 3
    assert f"-> {api_key_id(ADMIN_API_KEY)} (admin)" in keyed_stack.log.read_text()
