"""Which environment variables the functions read, and what running them locally sets.

The local stack (`make run`) and `make sam-local` both build the functions' environment from here,
so a setting can be given the same way to both, and a variable one of them sets cannot be missing
from the other. Nothing here is a hand-kept list of settings: they are read from the template and
from the layer's `Settings` model (parsed, not imported, so the caller needs no pydantic).
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from devkit.template import REGION, ROOT

SETTINGS_MODULE = ROOT / "layers" / "common" / "retail_pulse" / "settings.py"

# What the local stack sets because it is local, applied only where the user set nothing:
# sample and test images are served from 127.0.0.1 (refused as SSRF in the cloud), and there is no
# X-Ray daemon to send traces to.
LOCAL_DEFAULTS: dict[str, str] = {
    "ALLOW_PRIVATE_IMAGE_HOSTS": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
# How a function reaches the local AWS endpoints: the SDK's own settings, no code of ours reads them.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS")
# Set by the Lambda runtime itself (SAM sets them in its containers); a template may not declare them.
RUNTIME_RESERVED = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_EXECUTION_ENV",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "_HANDLER",
    }
)


@cache
def setting_names(path: Path = SETTINGS_MODULE) -> tuple[str, ...]:
    """The environment variables `retail_pulse.settings.Settings` reads: one per field, upper case."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            return tuple(
                stmt.target.id.upper()
                for stmt in node.body
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            )
    raise LookupError(f"no class Settings in {path}")


def is_resource_ref(value: object, resources: Mapping[str, object]) -> bool:
    """`!Ref SomeResource` (a physical name the local stack decides), not a parameter or a literal."""
    return isinstance(value, dict) and "Ref" in value and value["Ref"] in resources


def user_settable(raw_env: Mapping[str, object], resources: Mapping[str, object]) -> list[str]:
    """Variables the user's environment may set for a function: its template variables that are not
    resource names (those are the local stack's own) and every field of `Settings`."""
    names = [key for key, value in raw_env.items() if not is_resource_ref(value, resources)]
    resource_names = {key for key, value in raw_env.items() if is_resource_ref(value, resources)}
    names += [name for name in setting_names() if name not in resource_names and name not in names]
    return names


def local_environment(
    resolved: Mapping[str, str],
    raw_env: Mapping[str, object],
    resources: Mapping[str, object],
    endpoints: Mapping[str, str],
    *,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A function's environment when run locally, by increasing precedence: the template's values
    (resources as provisioned), the local defaults, the user's environment (any setting that is
    not a resource name), the endpoints and credentials of the local AWS, then `overrides` (--env)."""
    environ = os.environ if environ is None else environ
    env = dict(resolved)
    env.update(LOCAL_DEFAULTS)
    for key in [*user_settable(raw_env, resources), *LOCAL_DEFAULTS]:
        if key in environ:
            env[key] = environ[key]
    uri = env.get("STORE_MASTER_URI", "")
    if uri and not uri.startswith("s3://"):  # a file path, relative to where the user stands
        env["STORE_MASTER_URI"] = str(Path(uri).expanduser().resolve())
    env.update(endpoints)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides or {})
    return env


def declared_variables(envs: Iterable[Mapping[str, str]]) -> list[str]:
    """What a template must declare for SAM to pass these environments on (SAM drops the rest)."""
    names: dict[str, None] = {}
    for env in envs:
        names.update(dict.fromkeys(k for k in env if k not in RUNTIME_RESERVED))
    for name in (*setting_names(), *LOCAL_DEFAULTS, *ENDPOINT_VARIABLES):
        names.setdefault(name)
    return sorted(names)
