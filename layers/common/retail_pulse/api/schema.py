"""The API's request and response bodies as pydantic models, for the OpenAPI document only.

Responses are built by `logic` as plain dicts; the submit body is checked by `validation`, whose
errors name the exact field (`visits[2].image_url[0]: ...`), which a pydantic body would not match.
So these models describe the contract, and tests check that real responses fit them.
"""

from __future__ import annotations

from types import UnionType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse


class ResponseBody(BaseModel):
    # A field the API returns but this model lacks fails the tests that check real responses.
    model_config = ConfigDict(extra="forbid")


class ErrorBody(ResponseBody):
    error: str = Field(description="`<field path>: <what is wrong>` for bad input, else a sentence.")


class EnqueueFailedBody(ErrorBody):
    job_id: str = Field(description="The job was created and marked failed.")


class VisitIn(BaseModel):
    store_id: str = Field(min_length=1, examples=["RP00001"])
    image_url: list[str] = Field(min_length=1, description="Absolute http(s) URLs, without credentials (`user:pw@`).")
    visit_time: str = Field(
        description="RFC 3339 date-time: `T`, `t` or a space between date and time, seconds required, "
        "a fraction after `.`, then `Z` or `+hh:mm`/`-hh:mm` (none means UTC). A leap second (23:59:60 UTC "
        "on a month's last day) counts as 23:59:59.999 of that day.",
        examples=["2024-03-15T10:00:00Z"],
    )


class SubmitRequest(BaseModel):
    count: int = Field(description="Must equal the number of visits.")
    visits: list[VisitIn] = Field(min_length=1)
    callback_url: str | None = Field(
        default=None,
        description="Absolute http(s) URL (without credentials) POSTed once when the job ends (the job event), "
        "signed with `X-Retail-Pulse-Signature: sha256=<hex HMAC-SHA256 of the body>`.",
    )
    tolerated_failure_percentage: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="End the job `failed` early once more than this percentage of its images failed "
        "(as Distributed Map's ToleratedFailurePercentage); its remaining images are skipped.",
    )
    tolerated_failure_count: int | None = Field(
        default=None,
        ge=0,
        description="End the job `failed` early once more than this many images failed (ToleratedFailureCount).",
    )
    labels: dict[str, str] | None = Field(
        default=None,
        description="Up to 10 labels: keys 1-64 characters of `A-Z a-z 0-9 _ . - /`, values strings of at "
        "most 128 characters. Filter with `GET /api/jobs?label=key:value`; shown in status and notices.",
        examples=[{"team": "north", "campaign": "2024-q1"}],
    )
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Most of this job's images measured at once (under the client's quota of images in "
        "flight, the `ClientImageQuota` parameter): a lower number leaves more of the quota to the "
        "client's other jobs.",
    )


class SubmitAccepted(ResponseBody):
    job_id: str
    total: int = Field(description="Images in the job.")
    status_url: str = Field(examples=["/api/status?jobid=3f0c..."])


class Progress(ResponseBody):
    total: int
    processed: int = Field(description="succeeded + failed (+ cancelled); equals total once the job ended.")
    succeeded: int
    failed: int
    cancelled: int | None = Field(
        default=None, description="Present on cancelled jobs: images not ended when the job was cancelled."
    )
    skipped: int | None = Field(
        default=None,
        description="Present on jobs ended early by their failure threshold: images never processed.",
    )


class FailureThresholdBody(ResponseBody):
    tolerated_failure_percentage: float | None
    tolerated_failure_count: int | None


class Throughput(ResponseBody):
    recent_per_min: float | None = Field(
        description="Images per minute over the last 30-60 s (0 while paused; null before any was counted)."
    )
    overall_per_min: float | None = Field(description="Images per minute from `started_at` on.")


class Phases(ResponseBody):
    to_enqueue: int = Field(
        description="A manifest or retry job's images its fan-out has not enqueued yet (phase `enqueuing`); else 0."
    )
    queued: int = Field(description="Enqueued, not ended and not (estimated) in flight: in the queue or parked.")
    in_flight: int = Field(
        description="Being processed now, estimated (recent rate x mean invocation time): no write per batch."
    )
    ended: int = Field(description="= progress.processed")


class Cost(ResponseBody):
    gb_s: float = Field(description="process_image GB-seconds measured for this job's images.")
    requests: float = Field(description="process_image invocations (each image's share).")
    bytes_downloaded: int
    usd: float = Field(
        description="Estimate: the measured figures and the modelled queue/table requests, "
        "priced as in README 'Cost per 1,000 images'."
    )


class StoreError(ResponseBody):
    store_id: str
    error: str = Field(description="That store's first failure.")


JobStatusName = Literal["ongoing", "paused", "completed", "failed", "cancelled"]


class ManifestError(ResponseBody):
    line: int = Field(description="The manifest's line (1-based) of the invalid row or visit.")
    error: str = Field(examples=["image_url: must be an absolute http(s) URL"])


class JobStatus(ResponseBody):
    status: JobStatusName
    job_id: str
    progress: Progress
    created_at: str
    finished_at: str | None
    error: list[StoreError] | None = Field(default=None, description="Present when something failed; at most 1,000.")
    error_truncated: bool | None = Field(default=None, description="Present (true) when `error` was cut at 1,000.")
    reason: str | None = Field(default=None, description="Why the whole job failed (e.g. enqueueing failed).")
    retry_of: str | None = Field(default=None, description="Present on a retry job: the job it retries.")
    retried_by: str | None = Field(default=None, description="Present once retried: the retry job's id.")
    labels: dict[str, str] = Field(description="As submitted (empty when none).")
    failure_threshold: FailureThresholdBody | None = Field(default=None, description="Present when submitted.")
    max_concurrency: int | None = Field(default=None, description="Present when submitted: most images in flight.")
    started_at: str | None = Field(description="When the first counted image began processing.")
    throughput: Throughput
    eta_s: int | None = Field(description="Seconds until the job ends at the recent rate; 0 once ended.")
    eta_at: str | None = Field(description="When that is (running jobs).")
    phases: Phases
    cost: Cost
    replayed: int | None = Field(default=None, description="Resume only: parked images sent to the queue again.")
    phase: Literal["accepted", "enqueuing", "ongoing"] | None = Field(
        default=None,
        description="Present while ongoing or paused: `accepted` (a manifest's rows are being checked; total is 0 "
        "until then), `enqueuing` (see `enqueued`), `ongoing` (every image is queued).",
    )
    enqueued: int | None = Field(default=None, description="Present while `enqueuing`: images enqueued so far.")
    manifest_errors: list[ManifestError] | None = Field(
        default=None, description="A refused manifest's invalid rows (the first 100), each naming its line."
    )
    manifest_error_count: int | None = Field(default=None, description="Every invalid row of a refused manifest.")


class JobListEntry(ResponseBody):
    job_id: str
    status: JobStatusName
    progress: Progress
    created_at: str
    finished_at: str | None
    retry_of: str | None = Field(default=None, description="Present on a retry job: the job it retries.")
    labels: dict[str, str] | None = Field(default=None, description="Present when the job has labels.")


class JobsPage(ResponseBody):
    jobs: list[JobListEntry] = Field(description="Newest first.")
    next_token: str | None = Field(description="Pass back for the next page; null on the last page.")


class RetryAccepted(SubmitAccepted):
    retry_of: str = Field(description="The job whose failed images this new job holds.")


class ImageResultBody(ResponseBody):
    index: int = Field(description="The image's position in the job (submission order, from 0).")
    store_id: str
    image_url: str
    visit_time: str = Field(description="As submitted.")
    status: Literal["succeeded", "failed"]
    width: int | None
    height: int | None
    perimeter: int | None = Field(description="2 * (width + height)")
    error: str | None
    error_class: Literal["transient", "permanent", "store"] | None = Field(
        description="Failed images: transient (timeouts, connection errors, 429/5xx after retries), permanent "
        "(404, not an image, too big) or store (store_id not in the Store Master)."
    )
    processed_at: str


class ResultsPage(ResponseBody):
    job_id: str
    results: list[ImageResultBody] = Field(
        description="Ended images in submission order (`order=processed`: in the order they ended)."
    )
    next_token: str | None = Field(description="Pass back for the next page; null on the last page.")
    order: Literal["processed"] | None = Field(default=None, description="`processed` for the results feed.")
    next_since: str | None = Field(
        default=None, description="Results feed: pass as `since` to get what ended after this page (never null)."
    )
    done: bool | None = Field(
        default=None, description="Results feed: true once the job has ended and every result was handed out."
    )


class Health(ResponseBody):
    status: Literal["ok"]


class CallbackKey(ResponseBody):
    client_id: str = Field(description="The caller's client: the id of its API key.")
    signing_key: str = Field(description="The key its jobs' callbacks are signed with (HMAC-SHA256).")
    header: str = Field(description="The header carrying the signature: `sha256=<hex>`.")
    algorithm: str


def json_content(model: type[BaseModel] | UnionType, description: str) -> OpenAPIResponse:
    """A `responses=` entry for Powertools: the model (or a union of models: `oneOf`) becomes a
    component schema."""
    return {"description": description, "content": {"application/json": {"model": model}}}


def inline_request_body(model: type[BaseModel], description: str) -> dict[str, Any]:
    """An OpenAPI requestBody with the model's schema inlined (no `$defs`, which a requestBody cannot hold)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return {"description": description, "required": True, "content": {"application/json": {"schema": resolve(schema)}}}


# -- jobs of any size: uploads, manifest submits, exports -------------------------------------------------
class TooLargeBody(ErrorBody):
    limit_bytes: int | None = Field(default=None, description="The inline body's limit, JSON-escaped, in bytes.")
    upload: str | None = Field(default=None, description="Where bigger jobs go: a manifest upload (`/api/uploads`).")


class ManifestSubmitRequest(BaseModel):
    manifest: str = Field(description="The `upload_id` of an uploaded manifest (POST /api/uploads, then PUT the file).")
    callback_url: str | None = Field(default=None, description="As for an inline job.")
    tolerated_failure_percentage: float | None = Field(default=None, ge=0, le=100, description="As for an inline job.")
    tolerated_failure_count: int | None = Field(default=None, ge=0, description="As for an inline job.")
    labels: dict[str, str] | None = Field(default=None, description="As for an inline job (up to 10).")
    max_concurrency: int | None = Field(default=None, ge=1, description="As for an inline job.")


class ManifestAccepted(ResponseBody):
    job_id: str
    status_url: str = Field(examples=["/api/status?jobid=3f0c..."])
    phase: Literal["accepted"] = Field(description="The fan-out checks every row, then enqueues the images.")
    format: Literal["csv", "jsonl", "json"] = Field(description="The manifest's format, as read from its start.")


class UploadRequest(BaseModel):
    size: int | None = Field(
        default=None, ge=1, description="The file's bytes: the URL then takes exactly that many (recommended)."
    )


class UploadCreated(ResponseBody):
    upload_id: str = Field(description='Submit it: POST /api/submit {"manifest": upload_id}.')
    upload_url: str = Field(description="Presigned S3 URL: PUT the file's bytes there (no other header needed).")
    expires_at: str = Field(description="The URL works until then (RFC 3339, UTC).")
    method: Literal["PUT"]
    max_bytes: int = Field(description="The largest manifest accepted.")
    size: int | None = Field(description="The size the URL is bound to, when one was given.")


class RetryFannedOut(ResponseBody):
    job_id: str
    status_url: str
    retry_of: str = Field(description="The job whose failed images this new job holds.")
    phase: Literal["accepted"] = Field(description="Many failed images: they are listed and enqueued by the fan-out.")


class ExportStarted(ResponseBody):
    export_id: str
    job_id: str
    state: Literal["running"]
    status_url: str = Field(examples=["/api/results/export?export_id=9a1b..."])


class ExportState(ResponseBody):
    export_id: str
    job_id: str
    format: Literal["jsonl", "csv"]
    state: Literal["running", "ready", "failed"]
    rows: int = Field(description="Results written so far (all of them once ready).")
    created_at: str
    status: Literal["failed", "succeeded"] | None = Field(default=None, description="The status filter, if any.")
    url: str | None = Field(default=None, description="Once ready: a presigned S3 GET URL of the file.")
    url_expires_at: str | None = None
    complete: bool | None = Field(
        default=None,
        description="Once ready: false when the job was still ongoing (the file's last line says how far it got).",
    )
    finished_at: str | None = None
    error: str | None = Field(default=None, description="Once failed: why.")


def one_of_request_body(description: str, *models: type[BaseModel]) -> dict[str, Any]:
    """A requestBody that is one of `models` (each inlined as in `inline_request_body`)."""
    schemas = [inline_request_body(m, "")["content"]["application/json"]["schema"] for m in models]
    content = {"application/json": {"schema": {"oneOf": schemas}}}
    return {"description": description, "required": True, "content": content}
