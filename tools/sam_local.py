"""`make sam-local`: the API served by SAM CLI's emulator (`sam local start-api`, functions in Lambda
containers), everything else by the local stack (`python -m local_stack --no-api`: moto, SQS, the
SQS event sources driving process_image and dead_letter in its own workers, schedules).

Steps: start the local stack without its API and have it write each function's environment; make
the template SAM runs (tools/sam_local_template.py: API functions only, every variable declared)
and env.json from that environment, with the local AWS endpoints at the Docker bridge's address on
the host; forward that address to 127.0.0.1 (tools/tcp_forward.py); `sam build`; `sam local
start-api --warm-containers EAGER`. Ctrl-C stops everything it started.

    python -m tools.sam_local [--port 3000] [--stack-port 3001] [-- <python -m local_stack options>]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import yaml

from devkit.function_env import ENDPOINT_VARIABLES
from devkit.template import REGION, ROOT, load_template
from local_stack.runner import RunningStack, start_local_stack

from .sam_local_template import api_functions, bound_ports, env_json, sam_template
from .tcp_forward import TcpForward

WORK_DIR = ROOT / ".aws-sam" / "sam-local"
# The stand-in image of ../shared/tools/lambda-image.sh is tagged as the real one (SAM looks it up by
# this name); a pulled image has a registry digest, an imported one none.
LAMBDA_IMAGE = "public.ecr.aws/lambda/python:3.12-x86_64"
DEFAULT_BRIDGE = "172.17.0.1"  # docker0's usual address, if `docker network inspect` cannot tell
READY_TIMEOUT_S = 300  # sam build (pip) on a cold cache, then five containers started


def find_sam() -> str | None:
    local = ROOT / ".venv-sam" / "bin" / "sam"
    return str(local) if local.exists() else shutil.which("sam")


def find_python312() -> str | None:
    """`sam build` runs the layer's build with `python3.12` from PATH (the functions' runtime)."""
    candidates = [shutil.which("python3.12"), *sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))]
    for candidate in candidates:
        if (
            candidate
            and subprocess.run(
                [str(candidate), "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        ):
            return str(candidate)
    return None


def docker() -> str:
    return shutil.which("docker") or "docker"


def engine_problem() -> str | None:
    """Why no Lambda container can run here (None: one can)."""
    if not shutil.which("docker"):
        return "no container engine (`docker` not found; ../shared/tools/lambda-image.sh installs one)"
    info = subprocess.run([docker(), "info"], capture_output=True, text=True, check=False, timeout=30)
    if info.returncode != 0:
        return f"the container engine does not answer (`docker info`: {info.stderr.strip()[:200]})"
    return None


def image_is_local_stand_in(image: str = LAMBDA_IMAGE) -> bool:
    """The image exists and came from no registry (no RepoDigests): this machine reaches none, so
    SAM must not try to pull (it would fail, or wait)."""
    out = subprocess.run(
        [docker(), "image", "inspect", "--format", "{{json .RepoDigests}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.returncode == 0 and json.loads(out.stdout or "null") in ([], None)


def bridge_address() -> str:
    """The host's address on Docker's default bridge: what containers reach the host at."""
    out = subprocess.run(
        [docker(), "network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    found = out.stdout.split()
    return found[0] if out.returncode == 0 and found else DEFAULT_BRIDGE


class SamLocal:
    """The local stack (no API), the forward and `sam local start-api`, started and stopped together."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.work_dir)
        self.stack: RunningStack | None = None
        self.forward: TcpForward | None = None
        self.sam: subprocess.Popen | None = None
        self.sam_log = self.work / "sam.log"

    def start(self) -> SamLocal:
        self.work.mkdir(parents=True, exist_ok=True)
        env_dump = self.work / "functions-env.json"
        self.stack = start_local_stack(
            self.work, "--no-api", "--write-env", str(env_dump), *self.args.stack_args, port=self.args.stack_port
        )
        print(self.stack.log.read_text(), end="", flush=True)
        environments = json.loads(env_dump.read_text())
        endpoints = {k: next(iter(environments.values()))[k] for k in ENDPOINT_VARIABLES}
        host = self.args.container_host_address or bridge_address()
        template = load_template()
        functions = api_functions(template)
        (self.work / "template.yaml").write_text(yaml.safe_dump(sam_template(template, environments), sort_keys=False))
        (self.work / "env.json").write_text(json.dumps(env_json(environments, endpoints, host, functions), indent=2))
        self.forward = TcpForward(host, bound_ports(endpoints)).start()
        self._build()
        self._start_api()
        return self

    def _sam_env(self) -> dict[str, str]:
        python312 = find_python312()
        path = os.environ.get("PATH", "")
        if python312:
            path = f"{Path(python312).parent}{os.pathsep}{path}"
        # The region the local stack's resources live in (SAM hands the host's region to containers).
        return {
            **os.environ,
            "PATH": path,
            "SAM_CLI_TELEMETRY": "0",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def _build(self) -> None:
        command = [
            self.args.sam, "build", "--template-file", str(self.work / "template.yaml"),
            "--build-dir", str(self.work / "build"), "--cached", "--cache-dir", str(self.work / "cache"),
        ]  # fmt: skip
        print("$", " ".join(command), flush=True)
        subprocess.run(command, cwd=self.work, env=self._sam_env(), check=True, stdout=sys.stderr)

    def _start_api(self) -> None:
        command = [
            self.args.sam, "local", "start-api",
            "--template-file", str(self.work / "build" / "template.yaml"),
            "--env-vars", str(self.work / "env.json"),
            "--host", "127.0.0.1", "--port", str(self.args.port),
            "--warm-containers", "EAGER", "--region", REGION,
        ]  # fmt: skip
        pull = self.args.pull
        if pull == "never" or (pull == "auto" and image_is_local_stand_in()):
            command.append("--skip-pull-image")
        print("$", " ".join(command), flush=True)
        # A session of its own: Ctrl-C in the terminal reaches us, and we stop SAM so that it removes
        # its warm containers.
        self.sam = subprocess.Popen(
            command, cwd=self.work, env=self._sam_env(), stdout=self.sam_log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{self.args.port}/api/health"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.sam.poll() is not None:
                raise RuntimeError(f"sam local start-api exited:\n{self.sam_log.read_text()}")
            try:
                if requests.get(url, timeout=30).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise RuntimeError(f"sam local start-api did not answer {url}:\n{self.sam_log.read_text()}")

    def describe(self) -> str:
        assert self.stack is not None and self.forward is not None
        return "\n".join(
            [
                f"API          http://127.0.0.1:{self.args.port}  (sam local start-api; log {self.sam_log})",
                f"Local stack  {self.stack.url}  (AWS, queues, event sources, schedules; samples at "
                f"{self.stack.url}/samples/shelf.jpg)",
                f"Containers   reach the local AWS at {self.forward.listen_host} (forwarded to 127.0.0.1, ports "
                f"{', '.join(map(str, self.forward.ports))})",
            ]
        )

    def stop(self) -> None:
        if self.sam and self.sam.poll() is None:
            self.sam.send_signal(signal.SIGINT)  # SAM removes its containers on SIGINT, not on SIGTERM
            try:
                self.sam.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.sam.kill()
        if self.forward:
            self.forward.stop()
        if self.stack:
            self.stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.sam_local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")), help="SAM's API port")
    parser.add_argument("--stack-port", type=int, help="the local stack's port (samples, topics); default port+1")
    parser.add_argument("--sam", default=find_sam(), help="the sam executable (default: .venv-sam/bin/sam)")
    parser.add_argument(
        "--container-host-address",
        help="where containers reach this host (default: the Docker bridge's gateway, usually 172.17.0.1)",
    )
    parser.add_argument(
        "--pull",
        choices=("auto", "always", "never"),
        default=os.environ.get("SAM_LOCAL_PULL", "auto"),
        help="pull the Lambda image (auto: not when the local image came from no registry)",
    )
    parser.add_argument("--work-dir", default=str(WORK_DIR), help="generated template, env.json, build, logs")
    parser.add_argument("stack_args", nargs="*", help="after --: options of python -m local_stack")
    args = parser.parse_args(argv)
    args.stack_port = args.stack_port or args.port + 1
    if not args.sam:
        print("sam-local: no SAM CLI (make .venv-sam/.installed)", file=sys.stderr)
        return 2
    problem = engine_problem()
    if problem:
        print(f"sam-local: {problem}", file=sys.stderr)
        return 2
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    runner = SamLocal(args)
    try:
        runner.start()
        print(runner.describe(), flush=True)
        print(f"SAM local ready at http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
        stopped.wait()
        print("stopping...", flush=True)
    finally:
        runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
