"""The dashboard in a real browser (Playwright driving Debian's Chromium) against the local stack.

Screenshots land in artifacts/dashboard/ (desktop and a 390 px wide phone) for a human to look at.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from harness import ROOT, make_image

from retail_pulse.domain import exports
from retail_pulse.domain.errors import InvalidRequest
from retail_pulse.domain.validation import parse_job_request

from .conftest import API_KEY

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (requirements-dev.txt)")
expect = sync_api.expect

ARTIFACTS = ROOT / "artifacts" / "dashboard"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
JOB_DONE_S = 60  # generous: two shared cores, other suites running


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def context(browser):
    # One context for the module: localStorage (this browser's jobs) carries over between tests.
    # Reduced motion: no progress-bar transition half-way through in a screenshot.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True, reduced_motion="reduce"
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context, local_stack):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(local_stack.url + "/")
    yield page
    page.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest.fixture(scope="module")
def images(image_server):
    return {
        "jpg": image_server.add("/dash/a.jpg", make_image("JPEG", 640, 480)),
        "png": image_server.add("/dash/b.png", make_image("PNG", 300, 200), "image/png"),
        "missing": image_server.url("/dash/missing.jpg"),
    }


def submit_from_page(page, job: dict) -> str:
    page.get_by_role("link", name="Submit").click()
    page.get_by_label("Job JSON").fill(json.dumps(job))
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_url(re.compile(r"#/job/[0-9a-f-]+$"))
    return page.url.rsplit("/", 1)[-1]


def wait_for_status(page, status: str) -> None:
    expect(page.locator("#job-status")).to_have_text(status, timeout=JOB_DONE_S * 1000)


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def python_verdict(body: object) -> str | None:
    try:
        parse_job_request(json.dumps(body), max_images=10_000)
    except InvalidRequest as exc:
        return exc.message
    return None


VISIT = {"store_id": "RP00001", "image_url": ["https://example.com/a.jpg"], "visit_time": "2024-03-15T10:00:00Z"}
VALIDATION_CASES = [
    {"count": 1, "visits": [VISIT]},
    [VISIT],
    {"visits": [VISIT]},
    {"count": "1", "visits": [VISIT]},
    {"count": True, "visits": [VISIT]},
    {"count": 1},
    {"count": 1, "visits": {}},
    {"count": 0, "visits": []},
    {"count": 2, "visits": [VISIT]},
    {"count": 1, "visits": ["RP00001"]},
    {"count": 1, "visits": [{"store_id": "RP00001", "image_url": ["https://example.com/a.jpg"]}]},
    {"count": 1, "visits": [{**VISIT, "store_id": "  "}]},
    {"count": 1, "visits": [{**VISIT, "store_id": 7}]},
    {"count": 1, "visits": [{**VISIT, "image_url": []}]},
    {"count": 1, "visits": [{**VISIT, "image_url": "https://example.com/a.jpg"}]},
    {"count": 1, "visits": [{**VISIT, "image_url": ["https://example.com/a.jpg", "ftp://example.com/b.jpg"]}]},
    {"count": 1, "visits": [{**VISIT, "image_url": ["/relative.jpg"]}]},
    {"count": 1, "visits": [{**VISIT, "image_url": ["http:example.com/a.jpg"]}]},
    {"count": 1, "visits": [{**VISIT, "image_url": ["https://example.com/a b.jpg"]}]},
    {"count": 1, "visits": [{**VISIT, "image_url": ["https://example.com:99999/a.jpg"]}]},
    {"count": 1, "visits": [{**VISIT, "image_url": ["HTTPS://user@[::1]:8080/a.jpg"]}]},
    {"count": 1, "visits": [{**VISIT, "image_url": ["https://example.com/a.jpg", "http://u:p@example.com/b.jpg"]}]},
    {"count": 1, "visits": [{**VISIT, "image_url": ["http://example.com/a@b.jpg?c=d@e#f@g"]}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "2024-03-15"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "2024-02-30T10:00:00Z"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "2024-03-15T25:00:00Z"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "yesterday T noon"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": 1710496800}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "2024-03-15T10:00:00.123456+05:30"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "2024-03-15t10:00z"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "2024-03-15T10:00:00"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "2024-03-15 10:00:00Z"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "2016-12-31T23:59:60Z"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "2016-12-31T23:59:60+01:00"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "2024-03-15T10:00:00,5Z"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "20240315T100000Z"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "2024-W11-5T10:00:00Z"}]},
    {"count": 1, "visits": [{**VISIT, "visit_time": "0099-02-29T10:00:00Z"}]},
    {"count": 2, "visits": [VISIT, {**VISIT, "image_url": [VISIT["image_url"][0], "mailto:x@example.com"]}]},
]


def test_every_module_loads_as_javascript_and_no_view_logs_an_error(browser, local_stack):
    # A context of its own: nothing cached, so every module comes from the web function.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        problems: list[str] = []
        scripts: dict[str, tuple[int, str]] = {}
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))

        def on_response(response):
            name = response.url.split("?")[0].rsplit("/assets/", 1)[-1]
            if "/assets/" in response.url and name.endswith(".js"):
                scripts[name] = (response.status, response.headers.get("content-type", ""))

        page.on("response", on_response)
        page.goto(local_stack.url + "/")
        expect(page).to_have_title("Submit a job · Retail Pulse")  # main.js ran and routed
        modules = sorted(path.name for path in (ROOT / "functions" / "web" / "static").glob("*.js"))
        assert sorted(scripts) == modules
        for name, (status, content_type) in scripts.items():
            assert status == 200 and content_type.startswith("text/javascript"), (name, status, content_type)
        assert page.evaluate("typeof window.retailPulse.validateJob") == "function"
        # Each view once, waiting for what its API calls fill in.
        page.get_by_role("link", name="Jobs").click()
        expect(page.locator("#jobs-source")).to_have_text("All jobs, from the API.")
        page.get_by_role("link", name="Areas").click()
        expect(page.locator("#areas-table tbody tr")).to_have_count(2)
        page.get_by_role("link", name="Settings").click()
        expect(page.locator("#api-default")).to_have_text(local_stack.url + "/")
        page.get_by_role("link", name="Submit").click()
        expect(page).to_have_title("Submit a job · Retail Pulse")
        assert problems == []
    finally:
        context.close()


def test_page_checks_a_job_exactly_as_the_api_does(page):
    verdicts = page.evaluate("cases => cases.map(c => window.retailPulse.validateJob(c))", VALIDATION_CASES)
    assert verdicts == [python_verdict(case) for case in VALIDATION_CASES]
    assert verdicts[0] is None and verdicts.count(None) >= 4  # accepted ones are in the set too


def test_invalid_job_is_not_sent_and_the_apis_own_400_is_shown_verbatim(page, images):
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.get_by_label("Job JSON").fill(json.dumps({"count": 3, "visits": [{**VISIT, "image_url": [images["jpg"]]}]}))
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("#submit-message")).to_have_text("Not sent: count: 3 does not match the number of visits (1)")
    assert posts == []

    # `1.0` is an integer to JavaScript but not to the API: the page sends it and shows the verdict.
    page.get_by_label("Job JSON").fill(
        f'{{"count": 1.0, "visits": [{json.dumps({**VISIT, "image_url": [images["jpg"]]})}]}}'
    )
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("#submit-message")).to_have_text("The API answered 400: count: must be an integer")
    assert len(posts) == 1 and posts[0].endswith("/api/submit")


def test_csv_file_becomes_one_visit_per_store_and_time(page, images):
    csv = (
        "store_id,image_url,visit_time\r\n"
        f"RP00001,{images['jpg']},2024-03-15T10:00:00Z\r\n"
        f'RP00002,"{images["png"]}",2024-03-15T11:00:00Z\r\n'
        f"RP00001,{images['png']},2024-03-15T10:00:00Z\r\n"
        f"RP00001,{images['png']},2024-03-16T10:00:00Z\r\n"
    )
    page.get_by_label("Job file (.json or .csv)").set_input_files(
        {"name": "visits.csv", "mimeType": "text/csv", "buffer": csv.encode()}
    )
    expect(page.locator("#submit-message")).to_have_text("visits.csv: 3 visits, 4 images, ready to submit.")
    job = json.loads(page.get_by_label("Job JSON").input_value())
    assert job == {
        "count": 3,
        "visits": [
            {"store_id": "RP00001", "image_url": [images["jpg"], images["png"]], "visit_time": "2024-03-15T10:00:00Z"},
            {"store_id": "RP00002", "image_url": [images["png"]], "visit_time": "2024-03-15T11:00:00Z"},
            {"store_id": "RP00001", "image_url": [images["png"]], "visit_time": "2024-03-16T10:00:00Z"},
        ],
    }
    page.get_by_label("Job file (.json or .csv)").set_input_files(
        {"name": "bad.csv", "mimeType": "text/csv", "buffer": b"store,url\nRP00001,http://x/a.jpg\n"}
    )
    expect(page.locator("#submit-message")).to_contain_text("bad.csv: CSV: missing column store_id")


def test_job_runs_to_completed_with_live_figures(page, images, local_stack):
    job = {
        "count": 2,
        "visits": [
            {"store_id": "RP00001", "image_url": [images["jpg"], images["png"]], "visit_time": "2024-03-15T10:00:00Z"},
            {"store_id": "RP00006", "image_url": [images["png"]], "visit_time": "2024-03-16T09:00:00+05:30"},
        ],
    }
    job_id = submit_from_page(page, job)
    wait_for_status(page, "completed")
    assert local_stack.get("/api/status", jobid=job_id).json()["status"] == "completed"
    progress = page.get_by_role("progressbar")
    expect(progress).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#job-percent")).to_have_text("100 %")
    for field, value in (("total", "3"), ("processed", "3"), ("succeeded", "3"), ("failed", "0"), ("eta", "done")):
        expect(page.locator(f"#job-{field}")).to_have_text(value)
    expect(page.locator("#job-elapsed")).to_have_text(re.compile(r"^\d+(\.\d)? s$"))
    expect(page.locator("#job-announce")).to_have_text("Job completed: 3 of 3 images processed, 0 failed.")
    expect(page.locator("#errors-empty")).to_be_visible()
    rows = page.locator("#results-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("td")).to_have_text(
        ["1", "", "RP00001", "2024-03-15T10:00:00Z", "640", "480", "2,240", "succeeded"]
    )
    expect(rows.nth(2).locator("td").nth(6)).to_have_text("1,000")
    expect(rows.nth(0).locator("img")).to_have_attribute("src", images["jpg"])
    page.wait_for_function("() => [...document.querySelectorAll('#results-table img')].every(i => i.complete)")
    shot(page, "job-completed-desktop")

    # The job list is this browser's own (there is no jobs-list API yet).
    page.get_by_role("link", name="Jobs").click()
    expect(page.locator("#jobs-table")).to_contain_text(job_id)
    expect(page.locator("#jobs-table tr", has_text=job_id)).to_contain_text("completed")


def test_failed_image_shows_its_error_by_store_and_in_results(page, images):
    job = {
        "count": 2,
        "visits": [
            {
                "store_id": "RP00002",
                "image_url": [images["jpg"], images["missing"]],
                "visit_time": "2024-03-15T12:00:00Z",
            },
            {"store_id": "RP00003", "image_url": [images["png"]], "visit_time": "2024-03-15T12:00:00Z"},
        ],
    }
    submit_from_page(page, job)
    wait_for_status(page, "failed")
    expect(page.locator("#job-failed")).to_have_text("1")
    error_rows = page.locator("#errors-table tbody tr")
    expect(error_rows).to_have_count(1)
    expect(error_rows.first.locator("td").first).to_have_text("RP00002")
    expect(error_rows.first.locator("td").nth(1)).to_contain_text("HTTP 404")

    page.get_by_label("Show").select_option("failed")
    rows = page.locator("#results-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("HTTP 404")
    expect(rows.first.locator("td").first).to_have_text("2")  # its place in the job, not in the filter
    expect(page.locator("#results-message")).to_have_text("1 failed image on this page (of 3 loaded).")
    shot(page, "job-failed-desktop")
    page.get_by_label("Show").select_option("all")
    expect(rows).to_have_count(3)


def test_results_page_forward_and_back_and_download_as_csv(page, images):
    urls = [images["jpg"], images["png"]] * 6 + [images["missing"]]
    job_id = submit_from_page(
        page, {"count": 1, "visits": [{"store_id": "RP00004", "image_url": urls, "visit_time": "2024-03-17T08:00:00Z"}]}
    )
    wait_for_status(page, "failed")
    page.get_by_label("Per page").select_option("10")
    rows = page.locator("#results-table tbody tr")
    expect(rows).to_have_count(10)
    expect(page.get_by_role("button", name="Previous page")).to_be_disabled()
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#results-page")).to_have_text("Page 2")
    expect(rows).to_have_count(3)
    expect(rows.first.locator("td").first).to_have_text("11")
    expect(rows.last).to_contain_text("HTTP 404")
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()
    expect(rows.first.locator("td").first).to_have_text("1")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == f"results-{job_id}.csv"
    lines = Path(download.path()).read_text().splitlines()
    assert lines[0] == ",".join(exports.RESULT_COLUMNS)  # the same columns as the API's CSV export
    assert len(lines) == 1 + 13
    assert lines[1].startswith(f"0,RP00004,{images['jpg']},2024-03-17T08:00:00Z,succeeded,640,480,2240,,,")
    assert lines[-1].startswith("12,RP00004,") and ",failed,,,," in lines[-1] and "HTTP 404" in lines[-1]
    assert lines[-1].split(",")[-2] == "permanent"  # error_class


def test_unknown_job_lookup_shows_the_apis_error(page):
    page.get_by_role("link", name="Jobs").click()
    page.get_by_label("Job id").fill("no-such-job")
    page.get_by_label("Job id").press("Enter")
    expect(page.locator("#job-message")).to_have_text(re.compile(r"^The API answered 400: jobid: .+"))


def test_areas_view_from_the_reports_api_by_keyboard(page):
    # Keyboard only: the skip link first, then the tabs, Enter to follow one.
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.get_by_role("link", name="Areas").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#areas-title")).to_be_focused()  # focus moves to the new view's heading
    table = page.locator("#areas-table tbody")
    expect(table.locator("tr")).to_have_count(2)
    expect(table).to_contain_text("7100015")
    expect(page.locator("#areas-chart svg rect.bar-ok")).to_have_count(2)
    area_row = table.locator("tr", has_text="7100015")
    images_cell = area_row.locator("td").nth(2)
    expect(images_cell).not_to_have_text("0")  # the jobs above measured images of this area

    page.get_by_label("Area", exact=True).select_option("7100015")
    page.get_by_role("button", name="Show area").click()
    expect(page.locator("#stores-table tbody")).to_contain_text("RP00001")
    expect(page.locator("#visits-table tbody")).to_contain_text("2024-03-15")
    expect(page.locator("#visits-chart svg rect.bar-ok").first).to_be_visible()
    shot(page, "areas-desktop")


def test_areas_view_explains_a_deployment_without_the_reports_api(page):
    page.route(
        "**/api/reports/areas",
        lambda route: route.fulfill(
            status=403, content_type="application/json", body='{"error": "Missing Authentication Token"}'
        ),
    )
    page.get_by_role("link", name="Areas").click()
    expect(page.locator("#areas-message")).to_have_text(
        "The area reports API is not available on this deployment yet "
        "(the API answered 403: Missing Authentication Token)."
    )
    expect(page.locator("#areas-content")).to_be_hidden()


@pytest.mark.parametrize("view", ["submit", "job", "areas"])
def test_phone_width_has_no_sideways_scrolling(browser, local_stack, view):
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, reduced_motion="reduce"
    )
    try:
        page = phone.new_page()
        page.goto(local_stack.url + "/")
        if view == "job":
            job_id = local_stack.submit(
                [
                    {
                        "store_id": "RP00005",
                        "image_url": [local_stack.url + "/samples/nope.jpg"],
                        "visit_time": "2024-03-15T10:00:00Z",
                    }
                ]
            )
            page.goto(f"{local_stack.url}/#/job/{job_id}")
            wait_for_status(page, "failed")
        else:
            page.goto(f"{local_stack.url}/#/{view}")
            if view == "areas":
                expect(page.locator("#areas-table tbody tr")).to_have_count(2)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{view}: page is {overflow}px wider than the phone"
        shot(page, f"{view}-phone")
    finally:
        phone.close()


def test_api_key_from_settings_opens_a_keyed_stage(context, keyed_stack, images):
    # Another origin (port) than the other tests' stack: its own localStorage, no key saved yet.
    page = context.new_page()
    page.goto(keyed_stack.url + "/")
    job = {"count": 1, "visits": [{**VISIT, "image_url": [images["png"]]}]}
    page.get_by_label("Job JSON").fill(json.dumps(job))
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("#submit-message")).to_have_text("The API answered 403: Forbidden")
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_role("button", name="Save").click()
    submit_from_page(page, job)
    wait_for_status(page, "completed")
    page.close()


def test_job_control_pause_resume_plan_and_live_feed(page, local_stack):
    from .test_job_lifecycle import Server

    slow = Server(image_delay_s=0.5)  # under the stack's 1 s read timeout
    try:
        visits = [
            {"store_id": "RP00001", "image_url": [f"{slow.base}/dash-ctl/{v}-{i}.jpg" for i in range(10)],
             "visit_time": "2024-03-15T10:00:00Z"}
            for v in range(12)
        ]  # fmt: skip
        body = {"count": len(visits), "visits": visits, "labels": {"team": "dash"}, "tolerated_failure_percentage": 50}
        job_id = local_stack.post("/api/submit", body).json()["job_id"]
        page.goto(f"{local_stack.url}/#/job/{job_id}")
        expect(page.locator("#job-labels")).to_contain_text("team:dash")
        expect(page.locator("#job-threshold")).to_contain_text("50 %")
        page.get_by_role("button", name="Pause").click()
        wait_for_status(page, "paused")
        expect(page.get_by_role("button", name="Resume")).to_be_enabled()
        expect(page.get_by_role("button", name="Pause")).to_be_disabled()
        expect(page.locator("#job-eta")).to_have_text("paused")
        shot(page, "job-paused-desktop")
        page.get_by_role("button", name="Resume").click()
        expect(page.locator("#control-message")).to_contain_text("Resumed")
        wait_for_status(page, "completed")
        expect(page.locator("#feed-summary")).to_have_text(
            "120 results received in the order they ended (complete).", timeout=15_000
        )
        expect(page.locator("#feed-table tbody tr")).to_have_count(20)
        expect(page.locator("#plan-ended")).to_have_text("120")
        expect(page.locator("#plan-cost")).to_have_text(re.compile(r"^\$0\.\d{6}$"))
        expect(page.locator("#plan-started")).to_have_text(re.compile(r"\d"))
        shot(page, "job-control-completed-desktop")
        page.get_by_role("link", name="Jobs").click()
        page.get_by_role("textbox", name="Label", exact=True).fill("team:dash")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("#jobs-source")).to_contain_text("labelled team:dash")
        expect(page.locator("#jobs-table tbody tr")).to_have_count(1)
        expect(page.locator("#jobs-table")).to_contain_text(job_id)
    finally:
        slow.close()


def test_a_file_uploaded_as_a_manifest_runs_and_its_results_export_to_a_file(page, images, local_stack):
    """The upload goes straight to the presigned URL (the bucket's CORS lets the page's origin PUT),
    with a progress bar; the job view shows the fan-out's phase, then the export's download link."""
    rows = "".join(f"RP00003,{images['jpg']},2024-03-17T10:00:0{i}Z\n" for i in range(6))
    page.get_by_role("link", name="Submit").click()
    page.get_by_label("Job file (.json or .csv)").set_input_files(
        {"name": "visits.jsonl", "mimeType": "application/x-ndjson", "buffer": b""}
    )
    expect(page.get_by_label("Upload the file as a manifest")).to_be_checked()  # JSON Lines: always a manifest
    page.get_by_label("Job file (.json or .csv)").set_input_files(
        {"name": "visits.csv", "mimeType": "text/csv", "buffer": ("store_id,image_url,visit_time\n" + rows).encode()}
    )
    expect(page.get_by_label("Upload the file as a manifest")).not_to_be_checked()  # small CSV: inline
    page.get_by_label("Upload the file as a manifest").check()
    puts = []
    page.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_url(re.compile(r"#/job/[0-9a-f-]+$"))
    assert len(puts) == 1 and "/uploads/" in puts[0] and "X-Amz-Signature=" in puts[0]
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    wait_for_status(page, "completed")
    expect(page.locator("#job-total")).to_have_text("6")
    page.get_by_label("Format").select_option("jsonl")
    page.get_by_role("button", name="Export results to a file").click()
    link = page.get_by_role("link", name=re.compile(r"Download JSONL \(6 results\)"))
    expect(link).to_be_visible(timeout=JOB_DONE_S * 1000)
    exported = page.request.get(link.get_attribute("href"))
    assert exported.ok
    assert [json.loads(line)["visit_time"] for line in exported.text().splitlines()] == [
        f"2024-03-17T10:00:0{i}Z" for i in range(6)
    ]
    shot(page, "manifest-job-exported")
