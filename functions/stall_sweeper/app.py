"""Scheduled: finishes jobs that made no progress for longer than the queue's whole retry window,
failing their unfinished images, so no job stays `ongoing` forever."""

from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from retail_pulse import handler_kit as kit
from retail_pulse.domain.clock import format_utc
from retail_pulse.domain.rules import NOTICE_LEASE_S
from retail_pulse.logic.fanout_sweep import sweep_fanned_out
from retail_pulse.logic.notify import notify_ended_jobs, retry_owed_notices, send_event
from retail_pulse.logic.unfinished import replay_stranded, stalled_jobs_to_notify, sweep_stalled_jobs

logger = Logger()
# X-Ray patches botocore only: no trace header goes to image hosts or callback URLs (requests, httplib).
tracer = Tracer(patch_modules=kit.TRACED_MODULES)
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    settings, jobs, specs, notifier = kit.settings(), kit.jobs(), kit.specs(), kit.notifier()

    def sweep_failed(job_id: str, exc: Exception) -> None:
        logger.exception("sweeping a stalled job failed; the next run tries again", extra={"job_id": job_id})

    now = datetime.now(UTC)

    def fanned_out(job_id: str, idle_s: int):
        # A job fanned out after submit: its image list is its manifest (walked by the fan-out function).
        return sweep_fanned_out(job_id, idle_s, jobs=jobs, sweeps=kit.fanout_queue(), now=now)

    swept = sweep_stalled_jobs(
        jobs=jobs,
        specs=specs,
        now=now,
        stall_after_s=settings.stall_after_s,
        on_error=sweep_failed,
        fanned_out=fanned_out,
    )
    for job in swept:
        logger.warning(
            "stalled job finished",
            extra={"job_id": job.job_id, "idle_s": job.idle_s, "images_failed": job.images_failed},
        )
    ended = [job.finished.job_id for job in swept if job.finished is not None]
    outcomes = notify_ended_jobs(ended, [], jobs=jobs, notifier=notifier)
    # Notices an ending path could not publish (its lease has run out since): sent now, once.
    lease_expired = format_utc(datetime.now(UTC) - timedelta(seconds=NOTICE_LEASE_S))
    outcomes += retry_owed_notices(lease_expired, jobs=jobs, notifier=notifier)
    kit.log_notices(logger, outcomes)
    metrics.add_metric(name="StalledJobsFinished", unit=MetricUnit.Count, value=len(swept))
    # `job.stalled` (once per job) for jobs idle past STALL_NOTICE_AFTER_S, before they are swept.
    now = datetime.now(UTC)
    stalled = stalled_jobs_to_notify(
        jobs=jobs, now=now, notice_after_s=settings.stall_notice_after_s, stall_after_s=settings.stall_after_s
    )
    for job_id, idle_s in stalled:
        outcome = send_event(job_id, "stalled", jobs=jobs, notifier=notifier)
        logger.warning("job stalled", extra={"job_id": job_id, "idle_s": idle_s, "callback": outcome.callback})
    replayed = replay_stranded(jobs=jobs, parking=jobs, queue=kit.queue(), now=now)
    for job_id, images in replayed.items():
        logger.warning("parked images of a resumed job replayed", extra={"job_id": job_id, "images": images})
    out: dict = {"swept": [job.job_id for job in swept]}
    if stalled:
        out["stalled"] = [job_id for job_id, _ in stalled]
    return out
