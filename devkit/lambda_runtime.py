"""How Lambda presents a function: the context object handlers receive, and each function's module
imported on its own (every Lambda function has its own module state)."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from devkit.template import ROOT, FunctionSpec


@dataclass
class LambdaContext:
    """The attributes Powertools and our handlers read from the Lambda context; the remaining time
    counts down from `timeout_s`, as the function's Timeout does."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "local"
    timeout_s: float = 60.0
    deadline: float = field(default=0.0)

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def load_function(name: str, prefix: str = "fn") -> ModuleType:
    """Import functions/<name>/app.py under a unique module name, as each Lambda has its own."""
    return _load_module(Path(ROOT) / "functions" / name / "app.py", f"{prefix}_{name}_app")


def load_handler(function: FunctionSpec, prefix: str = "fn") -> Callable[[Any, Any], Any]:
    """The handler a template function names (`Handler: app.lambda_handler` in its CodeUri), its
    module imported on its own (named like `load_function`'s for functions/ code)."""
    module_name, attribute = function.handler.rsplit(".", 1)
    path = function.code_uri / (module_name.replace(".", "/") + ".py")
    return getattr(_load_module(path, f"{prefix}_{function.code_uri.name}_{module_name}"), attribute)


def _load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no function at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
