"""python -m retail_pulse_cli: submit jobs, follow them with a progress bar, read status and results.

Examples:
  python -m retail_pulse_cli submit examples/sample_job.json --wait
  python -m retail_pulse_cli submit visits.csv --wait        # a manifest: uploaded, then fanned out
  python -m retail_pulse_cli results JOB_ID --export csv -o results.csv
  python -m retail_pulse_cli --base-url https://abc.execute-api.us-east-1.amazonaws.com/prod status JOB_ID
  python -m retail_pulse_cli results JOB_ID --all > results.json
  python -m retail_pulse_cli list --status ongoing
  python -m retail_pulse_cli cancel JOB_ID
  python -m retail_pulse_cli retry JOB_ID --wait
  python -m retail_pulse_cli submit job.json --label team=north --tolerated-failure-percentage 5 --max-concurrency 20
  python -m retail_pulse_cli pause JOB_ID; python -m retail_pulse_cli resume JOB_ID
  python -m retail_pulse_cli retry JOB_ID --error-class transient --store RP00001,RP00002
  python -m retail_pulse_cli results JOB_ID --follow     # the live feed, in the order images end
  python -m retail_pulse_cli list --label team:north
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import requests
from tqdm import tqdm

DEFAULT_BASE_URL = os.environ.get("RETAIL_PULSE_URL", "http://127.0.0.1:3000")


class ApiError(Exception):
    pass


# Files submitted as a manifest (uploaded, then fanned out): CSV and JSON Lines always; a JSON job when
# it is bigger than an inline body may be (the API's limit keeps API Gateway's event within 6 MB).
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson")
INLINE_MAX_BYTES = 5 * 1024 * 1024


class ProgressReader:
    """A file handed to `requests` as a body of known length, moving a progress bar as it is read."""

    def __init__(self, f, size: int, bar) -> None:
        self.f, self.size, self.bar = f, size, bar

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.bar.update(len(data))
        return data


def is_manifest(path: str, forced: bool) -> bool:
    return forced or path.lower().endswith(MANIFEST_SUFFIXES) or os.path.getsize(path) > INLINE_MAX_BYTES


class Client:
    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if api_key:
            self.session.headers["x-api-key"] = api_key
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs) -> dict:
        response = self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:500]}
        if response.status_code >= 400:
            raise ApiError(f"{response.status_code}: {body.get('error') or body.get('message') or body}")
        return body

    def submit(self, job: dict) -> dict:
        return self._call("POST", "/api/submit", json=job)

    def upload(self, path: str, out=None) -> str:
        """POST /api/uploads, then PUT the file to the presigned URL with a progress bar; the upload_id."""
        size = os.path.getsize(path)
        created = self._call("POST", "/api/uploads", json={"size": size})
        with (
            open(path, "rb") as f,
            tqdm(total=size, unit="B", unit_scale=True, desc="upload", file=out or sys.stderr) as bar,
        ):
            # The URL is signed for exactly `size` bytes; no API key goes to S3.
            response = requests.put(created["upload_url"], data=ProgressReader(f, size, bar), timeout=self.timeout)
        if response.status_code >= 400:
            raise ApiError(f"upload refused: {response.status_code} {response.text[:300]}")
        return created["upload_id"]

    def submit_manifest(
        self, path: str, callback_url: str | None = None, out=None, controls: dict | None = None
    ) -> dict:
        """`controls`: the job's labels and failure threshold, as for an inline job."""
        body = {"manifest": self.upload(path, out)} | ({"callback_url": callback_url} if callback_url else {})
        return self._call("POST", "/api/submit", json=body | (controls or {}))

    def export(self, job_id: str, fmt: str, status: str | None = None, interval: float = 0.5, out=None) -> dict:
        """Start an export of the job's results and wait until its file is ready (or failed)."""
        params = {"jobid": job_id, "format": fmt} | ({"status": status} if status else {})
        started = self._call("POST", "/api/results/export", params=params)
        with tqdm(unit="rows", desc="export", file=out or sys.stderr) as bar:
            while True:
                state = self._call("GET", "/api/results/export", params={"export_id": started["export_id"]})
                bar.n = state["rows"]
                bar.refresh()
                if state["state"] != "running":
                    break
                time.sleep(interval)
        if state["state"] != "ready":
            raise ApiError(f"export failed: {state.get('error')}")
        return state

    def download(self, url: str, path: str, out=None) -> int:
        """The file at a presigned URL, streamed to `path`; its size."""
        written = 0
        with requests.get(url, stream=True, timeout=self.timeout) as response, open(path, "wb") as f:
            if response.status_code >= 400:
                raise ApiError(f"download refused: {response.status_code} {response.text[:300]}")
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="download", file=out or sys.stderr) as bar:
                for chunk in response.iter_content(1024 * 1024):
                    f.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
        return written

    def status(self, job_id: str) -> dict:
        return self._call("GET", "/api/status", params={"jobid": job_id})

    def jobs(self, status: str | None = None, limit: int = 100, label: str | None = None):
        """Every job (of `status`, with `label` key:value), newest first, following the pages."""
        token = None
        while True:
            params = {"limit": limit, "status": status, "next_token": token, "label": label}
            params = {key: value for key, value in params.items() if value is not None}
            page = self._call("GET", "/api/jobs", params=params)
            yield from page["jobs"]
            token = page.get("next_token")
            if not token:
                return

    def cancel(self, job_id: str) -> dict:
        return self._call("POST", "/api/jobs/cancel", params={"jobid": job_id})

    def retry(self, job_id: str, **filters: str | None) -> dict:
        """`filters`: error_class, store_id, index (comma-separated), as the API takes them."""
        params = {"jobid": job_id} | {k: v for k, v in filters.items() if v}
        return self._call("POST", "/api/jobs/retry", params=params)

    def pause(self, job_id: str) -> dict:
        return self._call("POST", "/api/jobs/pause", params={"jobid": job_id})

    def resume(self, job_id: str) -> dict:
        return self._call("POST", "/api/jobs/resume", params={"jobid": job_id})

    def feed(self, job_id: str, interval: float = 0.2, limit: int = 1000, since: str | None = None):
        """The job's results in the order they end, as they end, until the job has ended and every
        result came (each exactly once: the API's cursor `next_since` resumes where a page stopped)."""
        while True:
            params = {"jobid": job_id, "order": "processed", "limit": limit} | ({"since": since} if since else {})
            page = self._call("GET", "/api/results", params=params)
            yield from page["results"]
            since = page["next_since"]
            if page.get("done"):
                return
            if len(page["results"]) < limit:
                time.sleep(interval)

    def results(self, job_id: str, limit: int = 1000):
        token = None
        while True:
            params = {"jobid": job_id, "limit": limit} | ({"next_token": token} if token else {})
            page = self._call("GET", "/api/results", params=params)
            yield from page["results"]
            token = page.get("next_token")
            if not token:
                return


def wait_with_progress(client: Client, job_id: str, interval: float, out=None) -> dict:
    out = out or sys.stderr
    status = client.status(job_id)
    total = status["progress"]["total"]
    with tqdm(total=total, unit="img", desc=job_id[:12], file=out, dynamic_ncols=True) as bar:
        while True:
            progress = status["progress"]
            bar.total = progress["total"] or None  # a manifest job's total is known once it is checked
            bar.n = progress["processed"]
            postfix = {"ok": progress["succeeded"], "failed": progress["failed"]}
            if status.get("throughput", {}).get("recent_per_min") is not None:
                postfix["img/min"] = status["throughput"]["recent_per_min"]
            if status["status"] == "paused":
                postfix["state"] = "paused"
            if status.get("phase") in ("accepted", "enqueuing"):  # the fan-out is still at work
                postfix["phase"] = status["phase"] + (f" {status['enqueued']}" if "enqueued" in status else "")
            bar.set_postfix(postfix, refresh=False)
            bar.refresh()
            if status["status"] not in ("ongoing", "paused"):
                return status
            time.sleep(interval)
            status = client.status(job_id)


def print_summary(status: dict, out=None) -> None:
    out = out or sys.stdout  # looked up at call time, so redirected output is honoured
    p = status["progress"]
    print(f"job {status['job_id']}: {status['status']}", file=out)
    cancelled = f", cancelled {p['cancelled']}" if p.get("cancelled") is not None else ""
    cancelled += f", skipped {p['skipped']}" if p.get("skipped") is not None else ""
    print(f"  images {p['total']}, succeeded {p['succeeded']}, failed {p['failed']}{cancelled}", file=out)
    print_plan(status, out)
    for link, label in (("retry_of", "retry of"), ("retried_by", "retried by")):
        if status.get(link):
            print(f"  {label} job {status[link]}", file=out)
    print(f"  created {status['created_at']}, finished {status.get('finished_at') or '-'}", file=out)
    for entry in status.get("error", []):
        print(f"  store {entry['store_id']}: {entry['error']}", file=out)
    if status.get("error_truncated"):
        print("  (more stores failed; errors truncated)", file=out)
    if status.get("reason"):
        print(f"  reason: {status['reason']}", file=out)
    for entry in status.get("manifest_errors", []):
        print(f"  manifest line {entry['line']}: {entry['error']}", file=out)
    if status.get("manifest_error_count", 0) > len(status.get("manifest_errors", [])):
        print(f"  ({status['manifest_error_count']} invalid rows in all)", file=out)


def print_plan(status: dict, out) -> None:
    """Labels, threshold, throughput, ETA, phases and cost, when the API gives them."""
    if status.get("labels"):
        print("  labels " + ", ".join(f"{k}={v}" for k, v in sorted(status["labels"].items())), file=out)
    threshold = status.get("failure_threshold")
    if threshold:
        parts = [f"{k.removeprefix('tolerated_failure_')} {v}" for k, v in threshold.items() if v is not None]
        print("  failure threshold " + ", ".join(parts), file=out)
    if status.get("max_concurrency"):
        print(f"  max concurrency {status['max_concurrency']} images", file=out)
    if "throughput" in status:
        t, phases, cost = status["throughput"], status["phases"], status["cost"]
        eta = f"{status['eta_s']} s" if status.get("eta_s") is not None else "-"
        print(
            f"  started {status.get('started_at') or '-'}; {t['recent_per_min'] or '-'} img/min now,"
            f" {t['overall_per_min'] or '-'} overall; ETA {eta}",
            file=out,
        )
        print(f"  queued {phases['queued']}, in flight ~{phases['in_flight']}, ended {phases['ended']}", file=out)
        print(
            f"  cost {cost['gb_s']} GB-s, {cost['requests']} requests, {cost['bytes_downloaded']} bytes,"
            f" ~${cost['usd']:.6f}",
            file=out,
        )


def run_lifecycle_command(client: Client, args: argparse.Namespace) -> int:
    """list / cancel / pause / resume / retry."""
    if args.command == "list":
        for count, job in enumerate(client.jobs(args.status, label=args.label), start=1):
            p = job["progress"]
            print(f"{job['job_id']}  {job['status']:9}  {p['processed']}/{p['total']}  {job['created_at']}")
            if count == args.limit:
                break
        return 0
    if args.command in ("cancel", "pause", "resume"):
        print_summary(getattr(client, args.command)(args.job_id))
        return 0
    accepted = client.retry(args.job_id, error_class=args.error_class, store_id=args.store, index=args.index)
    print(f"retrying as job {accepted['job_id']} ({accepted.get('total', 'many')} images)", file=sys.stderr)
    return follow(client, accepted["job_id"], args.wait, args.interval)


def run_results_command(client: Client, args: argparse.Namespace) -> int:
    """results: JSON lines on stdout, or with --export a file written by the API (any job size)."""
    if args.export:
        ready = client.export(args.job_id, args.export, args.status)
        path = args.output or f"{args.job_id}.{args.export}"
        size = client.download(ready["url"], path)
        note = "" if ready["complete"] else " (the job was still ongoing: see the file's last line)"
        print(f"{ready['rows']} results, {size} bytes in {path}{note}", file=sys.stderr)
        return 0
    found = client.feed(args.job_id, args.interval) if args.follow else client.results(args.job_id)
    for result in found:
        print(json.dumps(result), flush=args.follow)
    return 0


def follow(client: Client, job_id: str, wait: bool, interval: float) -> int:
    """Print the new job's id, or follow it to its end: exit status 0 only for `completed`."""
    if not wait:
        print(job_id)
        return 0
    final = wait_with_progress(client, job_id, interval)
    print_summary(final)
    return 0 if final["status"] == "completed" else 1


def with_job_controls(job: dict, args: argparse.Namespace) -> dict:
    """The job file's body with the command line's labels, failure threshold and max_concurrency added."""
    job = dict(job)
    if args.label:
        labels = dict(job.get("labels") or {})
        for pair in args.label:
            key, sep, value = pair.partition("=")
            if not sep:
                raise ValueError(f"--label {pair!r}: expected KEY=VALUE")
            labels[key] = value
        job["labels"] = labels
    if args.tolerated_failure_percentage is not None:
        job["tolerated_failure_percentage"] = args.tolerated_failure_percentage
    if args.tolerated_failure_count is not None:
        job["tolerated_failure_count"] = args.tolerated_failure_count
    if args.max_concurrency is not None:
        job["max_concurrency"] = args.max_concurrency
    return job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m retail_pulse_cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"API base URL (default {DEFAULT_BASE_URL})")
    parser.add_argument("--api-key", default=os.environ.get("RETAIL_PULSE_API_KEY"))
    commands = parser.add_subparsers(dest="command", required=True)
    submit = commands.add_parser(
        "submit",
        help="submit a job file: the API's JSON body inline, or uploaded as a manifest (CSV, JSON Lines, big JSON)",
    )
    submit.add_argument("file")
    submit.add_argument("--manifest", action="store_true", help="upload it as a manifest whatever its size")
    submit.add_argument("--callback-url", help="with a manifest: the job's callback_url")
    submit.add_argument("--wait", action="store_true", help="show progress until the job ends")
    submit.add_argument("--interval", type=float, default=1.0)
    submit.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="a label (repeatable)")
    submit.add_argument("--tolerated-failure-percentage", type=float, help="end the job failed above this share")
    submit.add_argument("--tolerated-failure-count", type=int, help="end the job failed above this many failures")
    submit.add_argument("--max-concurrency", type=int, help="most of the job's images measured at once")
    status = commands.add_parser("status", help="a job's status")
    status.add_argument("job_id")
    status.add_argument("--wait", action="store_true")
    status.add_argument("--interval", type=float, default=1.0)
    results = commands.add_parser("results", help="a job's results as JSON lines (or exported to a file)")
    results.add_argument("job_id")
    results.add_argument(
        "--follow", action="store_true", help="the live feed: results as they end, until the job has ended"
    )
    results.add_argument("--interval", type=float, default=0.2, help="seconds between polls with --follow")
    results.add_argument("--export", choices=["jsonl", "csv"], help="export them to a file (any job size)")
    results.add_argument("--status", choices=["failed", "succeeded"], help="with --export: only these")
    results.add_argument("-o", "--output", help="with --export: the file (default <job_id>.<format>)")
    listing = commands.add_parser("list", help="jobs, newest first, one line each")
    listing.add_argument("--status", choices=["ongoing", "paused", "completed", "failed", "cancelled"])
    listing.add_argument("--label", metavar="KEY:VALUE", help="only jobs with this label")
    listing.add_argument("--limit", type=int, default=20, help="at most this many jobs (0: all)")
    cancel = commands.add_parser("cancel", help="cancel an ongoing or paused job")
    cancel.add_argument("job_id")
    pause = commands.add_parser("pause", help="pause an ongoing job (no new downloads until resumed)")
    pause.add_argument("job_id")
    resume = commands.add_parser("resume", help="resume a paused job")
    resume.add_argument("job_id")
    retry = commands.add_parser("retry", help="retry the failed images of an ended job as a new job")
    retry.add_argument("job_id")
    retry.add_argument("--error-class", choices=["transient", "permanent", "store"], help="only this class")
    retry.add_argument("--store", help="only these store ids (comma-separated)")
    retry.add_argument("--index", help="only these image indexes (comma-separated)")
    retry.add_argument("--wait", action="store_true", help="show progress until the new job ends")
    retry.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)

    client = Client(args.base_url, args.api_key)
    try:
        if args.command == "submit":
            if is_manifest(args.file, args.manifest):
                controls = with_job_controls({}, args)  # --label, --tolerated-failure-*: the manifest job's
                accepted = client.submit_manifest(args.file, args.callback_url, controls=controls)
                print(f"submitted job {accepted['job_id']} (manifest, {accepted['format']})", file=sys.stderr)
                return follow(client, accepted["job_id"], args.wait, args.interval)
            with open(args.file) as f:
                job = json.load(f)
            job = with_job_controls(job, args)
            accepted = client.submit(job)
            print(f"submitted job {accepted['job_id']} ({accepted.get('total', '?')} images)", file=sys.stderr)
            return follow(client, accepted["job_id"], args.wait, args.interval)
        if args.command == "status":
            final = wait_with_progress(client, args.job_id, args.interval) if args.wait else client.status(args.job_id)
            print_summary(final)
            return 0
        if args.command in ("list", "cancel", "pause", "resume", "retry"):
            return run_lifecycle_command(client, args)
        return run_results_command(client, args)
    except (ApiError, requests.RequestException, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
