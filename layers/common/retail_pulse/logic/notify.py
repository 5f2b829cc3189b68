"""Job completion notices: one message on the job events topic per ended job, and the job's
`callback_url` called once with the same body, signed. No boto3 here.

Exactly once per job: the conditional update that ends a job (the batch that finished it, or the
cancel) also writes the outbox `notices_owed = {"topic", "callback"}` and a lease (`notice_lease`,
NOTICE_LEASE_S) for its caller, and only that caller gets the ended job back, so a finishing batch
delivered twice finds the job already ended and sends nothing. The caller sends, then takes each
channel off the set. When publishing fails the topic stays owed and the lease is released: the
next process_image batch that meets the job (its pre-read sees `notices_owed`) claims the lease
and sends it; process_image fails the batch's records so that such a batch comes (SQS redelivery).
The callback is retried with backoff inside the call (SafeHttpClient) and then given up (logged):
a client's endpoint being down must not hold our queue. A publish that succeeded but could not be
recorded (crash in between) is sent again: SNS delivery is at-least-once anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass

from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.errors import InvalidRequest
from retail_pulse.domain.models import Job
from retail_pulse.domain.tenancy import Caller
from retail_pulse.logic.status import job_controls
from retail_pulse.ports import CallbackFailed, CallbackSender, EventTopic, JobLifecycleRepository

SIGNATURE_HEADER = "X-Retail-Pulse-Signature"
EVENT_HEADER = "X-Retail-Pulse-Event"
EVENT_NAME = "job.ended"
NOTICE_ERRORS = 10  # store errors in a notice (the summary; status has up to 1,000)
NO_SECRET = "failed: the signing secret could not be read"  # noqa: S105 - an outcome, not a secret


@dataclass(frozen=True)
class Notifier:
    topic: EventTopic | None  # None: no topic configured (the topic channel counts as delivered)
    callbacks: CallbackSender
    # The key signing callbacks, asked for at each callback (a rotated secret applies within the
    # adapter's cache time); empty: callbacks are not sent (receivers could not verify them).
    signing_secret: Callable[[], str]


@dataclass(frozen=True)
class NoticeOutcome:
    job_id: str
    topic_error: str | None = None  # set when publishing failed (the notice stays owed)
    callback: str = "none"  # none | sent | unsigned (no secret) | failed: <why>

    @property
    def complete(self) -> bool:
        """Nothing left owed: published, and the callback not waiting for its secret."""
        return self.error is None

    @property
    def error(self) -> str | None:
        """What is still owed: the topic's failure, or a callback waiting for its secret."""
        if self.topic_error is not None:
            return self.topic_error
        return self.callback if self.callback.startswith(NO_SECRET) else None


def notice_body(job: Job, event: str = EVENT_NAME, extra: dict | None = None) -> bytes:
    """The notice, byte for byte what is published and POSTed (and signed). Every event carries the
    job's labels, progress, throughput, ETA and cost (as its status shows them then)."""
    progress = {"total": job.total, "processed": job.processed, "succeeded": job.succeeded, "failed": job.failed}
    if job.status == "cancelled":
        progress["cancelled"] = job.cancelled
    if job.skipped:
        progress["skipped"] = job.skipped
    body = {
        "event": event,
        "job_id": job.job_id,
        "status": job.status,
        "progress": progress,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "error": job.store_errors[:NOTICE_ERRORS],
        "error_truncated": job.store_errors_truncated or len(job.store_errors) > NOTICE_ERRORS,
    }
    for key in ("retry_of", "reason"):
        if getattr(job, key):
            body[key] = getattr(job, key)
    body.update(job_controls(job, job.finished_at or utc_now()))
    body.update(extra or {})
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def client_key(secret: str, client_id: str | None) -> str:
    """The key a client's callbacks are signed with: derived from the stack's secret and the client
    (HMAC-SHA256 of its id), so one client's receiver cannot sign another client's notices. Jobs
    from before clients are signed with the secret itself."""
    if client_id is None:
        return secret
    return hmac.new(secret.encode(), f"callback-key:{client_id}".encode(), hashlib.sha256).hexdigest()


def callback_key(caller: Caller, signing_secret: Callable[[], str]) -> dict:
    """GET /api/callbacks/key: the caller's own key, to verify the callbacks of its jobs."""
    secret = signing_secret()
    if not secret:
        raise InvalidRequest(
            "callbacks are disabled on this deployment (no CALLBACK_SIGNING_SECRET_ARN): there is no key"
        )
    return {
        "client_id": caller.client_id,
        "signing_key": client_key(secret, caller.client_id),
        "header": SIGNATURE_HEADER,
        "algorithm": "HMAC-SHA256 of the raw body, hex, after 'sha256='",
    }


def signature(body: bytes, secret: str) -> str:
    """`sha256=<hex HMAC-SHA256 of the body>`, as GitHub-style webhooks sign."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver_notice(job_id: str, *, jobs: JobLifecycleRepository, notifier: Notifier) -> NoticeOutcome:
    """Sends what the job still owes; the caller holds the job's notice lease."""
    job = jobs.get_job(job_id)
    if job is None or not job.notices_owed:
        return NoticeOutcome(job_id)
    body = notice_body(job)
    topic_error = None
    if "topic" in job.notices_owed:
        try:
            if notifier.topic is not None:
                notifier.topic.publish(body.decode(), f"Retail Pulse job {job.status}", job.client_id)
        except Exception as exc:  # any failure leaves the notice owed for a retry
            topic_error = f"{type(exc).__name__}: {exc}"[:300]
        else:
            jobs.notice_delivered(job_id, "topic")
    callback = "none"
    if "callback" in job.notices_owed:
        callback = _call_back(job, body, notifier)
        if not callback.startswith(NO_SECRET):  # else unsent (never unsigned): still owed
            jobs.notice_delivered(job_id, "callback")  # sent, or given up after the sender's retries
    if topic_error is not None or callback.startswith(NO_SECRET):
        jobs.release_notice(job_id)  # the next batch that meets the job may retry at once
    return NoticeOutcome(job_id, topic_error, callback)


def _call_back(job: Job, body: bytes, notifier: Notifier, event: str = EVENT_NAME) -> str:
    if not job.callback_url:
        return "none"
    try:
        secret = notifier.signing_secret()
    except Exception as exc:  # the secret could not be read now: nothing is sent unsigned
        return f"{NO_SECRET}: {type(exc).__name__}: {exc}"[:300]
    if not secret:
        return "unsigned"
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(body, client_key(secret, job.client_id)),
        EVENT_HEADER: event,
    }
    try:
        status = notifier.callbacks.post(job.callback_url, body, headers)
    except CallbackFailed as exc:
        return f"failed: {exc}"[:300]
    return "sent" if 200 <= status < 300 else f"failed: HTTP {status}"


def notify_ended_jobs(
    finished: list[str], owed: list[str], *, jobs: JobLifecycleRepository, notifier: Notifier
) -> list[NoticeOutcome]:
    """Notices of the jobs this caller ended (it holds their leases), then of ended jobs whose notice
    is still owed from an earlier failure (each only if this caller wins its lease)."""
    outcomes = [deliver_notice(job_id, jobs=jobs, notifier=notifier) for job_id in finished]
    for job_id in owed:
        if job_id not in finished and jobs.claim_notice(job_id):
            outcomes.append(deliver_notice(job_id, jobs=jobs, notifier=notifier))
    return outcomes


def retry_owed_notices(ended_before: str, *, jobs: JobLifecycleRepository, notifier: Notifier) -> list[NoticeOutcome]:
    """Notices still owed by jobs that ended before `ended_before` (whose ender's lease has run out),
    each sent by whoever wins its lease: the stall sweeper's safety net for every ending path."""
    return notify_ended_jobs([], jobs.notices_due(ended_before), jobs=jobs, notifier=notifier)


# -- progress events: job.progress (25/50/75 %), job.first_failure, job.stalled --------------------
def event_name(claimed: str) -> tuple[str, dict]:
    """The event of a claim recorded on the job (`progress:25`, `first_failure`, `stalled`)."""
    if claimed.startswith("progress:"):
        return "job.progress", {"percent": int(claimed.split(":", 1)[1])}
    return f"job.{claimed}", {}


def send_event(job_id: str, claimed: str, *, jobs: JobLifecycleRepository, notifier: Notifier) -> NoticeOutcome:
    """Sends one progress event the caller has claimed (JobRepository.claim_event): at most once per
    job, on the topic and to the callback, signed as the completion notice. A failure is reported,
    not retried (the event's moment has passed; the completion notice is the one owed)."""
    job = jobs.get_job(job_id)
    if job is None:
        return NoticeOutcome(job_id)
    event, extra = event_name(claimed)
    body = notice_body(job, event, extra)
    topic_error = None
    try:
        if notifier.topic is not None:
            notifier.topic.publish(body.decode(), f"Retail Pulse {event}", job.client_id)
    except Exception as exc:  # reported by the caller; the event is not sent again
        topic_error = f"{type(exc).__name__}: {exc}"[:300]
    callback = _call_back(job, body, notifier, event)
    return NoticeOutcome(job_id, topic_error, callback)
