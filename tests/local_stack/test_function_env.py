"""Settings under `make run`: any setting a function reads comes from the user's environment, the
local defaults apply only where the user set nothing, resource names stay the local stack's, and a
callback signing secret is made up when nobody chose one."""

from __future__ import annotations

from devkit.function_env import LOCAL_DEFAULTS, local_environment
from devkit.template import Stack
from local_stack.stack import Options, chosen_signing_secret

ENDPOINTS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:2"}


def _env(function: str = "ProcessImageFunction", environ=None, overrides=None) -> dict[str, str]:
    stack = Stack(prefix="local")
    for logical in stack.resources:
        stack.refs[logical] = f"local-{logical}"
        stack.attrs[(logical, "QueueName")] = stack.attrs[(logical, "TopicName")] = f"local-{logical}"
    spec = stack.functions()[function]
    raw = stack.functions(resolve_environment=False)[function]
    return local_environment(
        spec.environment, raw.environment, stack.resources, ENDPOINTS, overrides=overrides, environ=environ or {}
    )


def test_local_defaults_apply_where_the_user_set_nothing():
    env = _env()
    for key, value in LOCAL_DEFAULTS.items():
        assert env[key] == value


def test_the_users_environment_wins_over_local_defaults():
    env = _env(environ={"ALLOW_PRIVATE_IMAGE_HOSTS": "false", "POWERTOOLS_TRACE_DISABLED": "false"})
    assert env["ALLOW_PRIVATE_IMAGE_HOSTS"] == "false"  # was: "true" whatever the user said
    assert env["POWERTOOLS_TRACE_DISABLED"] == "false"


def test_settings_outside_the_template_pass_through():
    # DOWNLOAD_ATTEMPTS and MAX_IMAGE_BYTES are Settings fields no template entry names.
    env = _env(environ={"DOWNLOAD_ATTEMPTS": "1", "MAX_IMAGE_BYTES": "1000", "PROCESSING_DELAY_MAX_S": "0.05"})
    assert env["DOWNLOAD_ATTEMPTS"] == "1" and env["MAX_IMAGE_BYTES"] == "1000"
    assert env["PROCESSING_DELAY_MAX_S"] == "0.05"
    assert "UNRELATED_VARIABLE" not in _env(environ={"UNRELATED_VARIABLE": "x"})


def test_resource_names_stay_the_local_stacks_and_overrides_win():
    env = _env(environ={"JOBS_TABLE_NAME": "prod-table", "IMAGE_QUEUE_URL": "https://sqs.example/q"})
    assert env["JOBS_TABLE_NAME"] == "local-JobsTable"
    assert env["IMAGE_QUEUE_URL"] == "local-ImageQueue"
    assert _env(overrides={"ALLOW_PRIVATE_IMAGE_HOSTS": "false"})["ALLOW_PRIVATE_IMAGE_HOSTS"] == "false"
    assert env["AWS_ENDPOINT_URL"] == ENDPOINTS["AWS_ENDPOINT_URL"] and env["AWS_ACCESS_KEY_ID"] == "local"


def test_a_signing_secret_is_made_up_only_when_nobody_chose_one():
    assert chosen_signing_secret(Options(), environ={}) is None  # made up
    assert (
        chosen_signing_secret(Options(callback_signing_secret="mine"), environ={"CALLBACK_SIGNING_SECRET": "x"})  # noqa: S106
        == "mine"
    )
    assert chosen_signing_secret(Options(), environ={"CALLBACK_SIGNING_SECRET": "x"}) == "x"
    assert chosen_signing_secret(Options(), environ={"CALLBACK_SIGNING_SECRET": ""}) == ""  # no callbacks
