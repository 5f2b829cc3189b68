"""Pause and resume a job. No boto3 here.

Parking: process_image reads its batch's job states before downloading (one read per batch); the
images of a paused job are not downloaded but parked (ParkingLot: one small item per batch) and
their messages acknowledged. Not returned to the queue: SQS counts every receive toward
maxReceiveCount, so a paused job's messages cycling through the queue would reach the dead-letter
queue after five passes (and cost a receive each time). Resume flips the job back to `ongoing` (its
progress clock restarted, so the stall sweeper does not take the pause for a stall) and sends the
parked messages to the queue again as new messages, then deletes what it sent.

Races:
- results written while the pause lands are counted (the stream consumer counts paused jobs);
- a batch that read `paused` parks after a resume already replayed: it reads the job again after
  parking, and replays (or drops, for an ended job) what it just parked itself;
- two replayers of one parked batch send its messages twice: the results are written once each
  (conditional Put), so counts stay exact; only a download may be repeated;
- a cancel of a paused job ends it like an ongoing one; its parked messages are dropped;
- a paused job whose last in-flight images end is finished (nothing is left to pause);
- the stall sweeper sweeps `ongoing` jobs only, and replays messages left parked on an ongoing job
  (a resume whose replay was cut short);
- a job paused while fanned out (`accepted` or `enqueuing`, logic/fanout.py): its fan-out stops at
  its next checkpoint (every checkpoint is conditional on the job being ongoing), images it already
  enqueued are parked like any; resume sends the fan-out's message again, which goes on from the
  last checkpoint (an image enqueued twice is written once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.errors import JobConflict
from retail_pulse.domain.fanout import FANOUT_PHASES
from retail_pulse.domain.models import LIVE_STATUSES, ImageTask
from retail_pulse.domain.tenancy import Caller
from retail_pulse.logic.status import job_status, require_job
from retail_pulse.ports import ImageQueue, JobLifecycleRepository, JobRepository, ParkingLot, WorkQueue


def pause_job(job_id: str | None, *, jobs: JobLifecycleRepository, caller: Caller) -> dict:
    job = require_job(job_id, jobs, caller)
    if not jobs.pause_job(job.job_id, utc_now()):
        now = jobs.get_job(job.job_id) or job
        raise JobConflict(f"jobid: job {job.job_id} is {now.status}; only ongoing jobs can be paused")
    return job_status(job.job_id, jobs=jobs, caller=caller)


def resume_job(
    job_id: str | None,
    *,
    jobs: JobLifecycleRepository,
    parking: ParkingLot,
    queue: ImageQueue,
    caller: Caller,
    fanout: WorkQueue | None = None,
) -> dict:
    job = require_job(job_id, jobs, caller)
    if not jobs.resume_job(job.job_id, utc_now()):
        now = jobs.get_job(job.job_id) or job
        raise JobConflict(f"jobid: job {job.job_id} is {now.status}; only paused jobs can be resumed")
    body = job_status(job.job_id, jobs=jobs, caller=caller)
    if fanout is not None and body.get("phase") in FANOUT_PHASES:
        # Paused while fanned out: its fan-out stopped (or will, at its next checkpoint, and the
        # message sent here then finds the lease free); it goes on from its last checkpoint.
        fanout.send({"job_id": job.job_id})
    body["replayed"] = replay_parked(job.job_id, parking=parking, queue=queue)
    return body


def replay_parked(
    job_id: str, *, parking: ParkingLot, queue: ImageQueue, keys: Sequence[str] | None = None, send: bool = True
) -> int:
    """Sends the job's parked messages (those of `keys`, or all) to the queue again, then forgets
    them; with `send` False only forgets them (the job ended). Returns the images sent."""
    sent = 0
    for key, tasks in parking.parked(job_id):
        if keys is not None and key not in keys:
            continue
        if send and tasks:
            queue.send(tasks)
            sent += len(tasks)
        parking.unpark(job_id, [key])
    return sent


@dataclass(frozen=True)
class Parked:
    parked: int  # images parked and still parked (their job is paused)
    replayed: int  # parked, then found resumed: sent to the queue again
    dropped: int  # parked, then found ended: forgotten


def park_images(tasks: Sequence[ImageTask], *, jobs: JobRepository, parking: ParkingLot, queue: ImageQueue) -> Parked:
    """Parks the images of paused jobs (their messages can then be acknowledged), then reads their
    jobs again: a resume (or an end) that landed in between is honoured here."""
    by_job: dict[str, list[ImageTask]] = {}
    for task in tasks:
        by_job.setdefault(task.job_id, []).append(task)
    keys = {job_id: parking.park(job_id, batch) for job_id, batch in by_job.items()}
    states = jobs.job_states(sorted(by_job))
    parked = replayed = dropped = 0
    for job_id, key in keys.items():
        state = states.get(job_id)
        count = len(by_job[job_id])
        if state is not None and state.status == "paused":
            parked += count
        elif state is not None and state.status in LIVE_STATUSES:
            replayed += replay_parked(job_id, parking=parking, queue=queue, keys=[key])
        else:
            replay_parked(job_id, parking=parking, queue=queue, keys=[key], send=False)
            dropped += count
    return Parked(parked, replayed, dropped)
