"""python -m retail_pulse_cli: submit jobs, follow them with a progress bar, read status and results.

Examples:
  python -m retail_pulse_cli submit examples/sample_job.json --wait
  python -m retail_pulse_cli --base-url https://abc.execute-api.us-east-1.amazonaws.com/prod status JOB_ID
  python -m retail_pulse_cli results JOB_ID --all > results.json
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

    def status(self, job_id: str) -> dict:
        return self._call("GET", "/api/status", params={"jobid": job_id})

    def results(self, job_id: str, limit: int = 1000):
        token = None
        while True:
            params = {"jobid": job_id, "limit": limit} | ({"next_token": token} if token else {})
            page = self._call("GET", "/api/results", params=params)
            yield from page["results"]
            token = page.get("next_token")
            if not token:
                return


def wait_with_progress(client: Client, job_id: str, interval: float, out=sys.stderr) -> dict:
    status = client.status(job_id)
    total = status["progress"]["total"]
    with tqdm(total=total, unit="img", desc=job_id[:12], file=out, dynamic_ncols=True) as bar:
        while True:
            progress = status["progress"]
            bar.n = progress["processed"]
            bar.set_postfix(ok=progress["succeeded"], failed=progress["failed"], refresh=False)
            bar.refresh()
            if status["status"] != "ongoing":
                return status
            time.sleep(interval)
            status = client.status(job_id)


def print_summary(status: dict, out=sys.stdout) -> None:
    p = status["progress"]
    print(f"job {status['job_id']}: {status['status']}", file=out)
    print(f"  images {p['total']}, succeeded {p['succeeded']}, failed {p['failed']}", file=out)
    print(f"  created {status['created_at']}, finished {status.get('finished_at') or '-'}", file=out)
    for entry in status.get("error", []):
        print(f"  store {entry['store_id']}: {entry['error']}", file=out)
    if status.get("error_truncated"):
        print("  (more stores failed; errors truncated)", file=out)
    if status.get("reason"):
        print(f"  reason: {status['reason']}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m retail_pulse_cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"API base URL (default {DEFAULT_BASE_URL})")
    parser.add_argument("--api-key", default=os.environ.get("RETAIL_PULSE_API_KEY"))
    commands = parser.add_subparsers(dest="command", required=True)
    submit = commands.add_parser("submit", help="submit a job file (the API's JSON body)")
    submit.add_argument("file")
    submit.add_argument("--wait", action="store_true", help="show progress until the job ends")
    submit.add_argument("--interval", type=float, default=1.0)
    status = commands.add_parser("status", help="a job's status")
    status.add_argument("job_id")
    status.add_argument("--wait", action="store_true")
    status.add_argument("--interval", type=float, default=1.0)
    results = commands.add_parser("results", help="a job's results as JSON lines")
    results.add_argument("job_id")
    args = parser.parse_args(argv)

    client = Client(args.base_url, args.api_key)
    try:
        if args.command == "submit":
            with open(args.file) as f:
                job = json.load(f)
            accepted = client.submit(job)
            print(f"submitted job {accepted['job_id']} ({accepted.get('total', '?')} images)", file=sys.stderr)
            if not args.wait:
                print(accepted["job_id"])
                return 0
            final = wait_with_progress(client, accepted["job_id"], args.interval)
            print_summary(final)
            return 0 if final["status"] == "completed" else 1
        if args.command == "status":
            final = wait_with_progress(client, args.job_id, args.interval) if args.wait else client.status(args.job_id)
            print_summary(final)
            return 0
        for result in client.results(args.job_id):
            print(json.dumps(result))
        return 0
    except (ApiError, requests.RequestException, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
