"""The template and env.json `make sam-local` hands SAM: every variable a function is given is
declared (SAM drops the others), endpoints rewritten for containers, API functions only."""

from __future__ import annotations

from pathlib import Path

from devkit.function_env import LOCAL_DEFAULTS, RUNTIME_RESERVED, declared_variables, setting_names
from devkit.template import Stack, load_template
from tools.sam_local_template import api_functions, bound_ports, container_url, env_json, sam_template

ENDPOINTS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:4577"}


def _local_envs() -> dict[str, dict[str, str]]:
    """What the local stack writes with --write-env, without starting it."""
    from devkit.function_env import local_environment

    stack = Stack(prefix="local")
    for logical in stack.resources:
        stack.refs[logical] = f"local-{logical}"
        for attr in ("Arn", "QueueName", "TopicName"):
            stack.attrs[(logical, attr)] = f"arn-or-name-of-{logical}"
    stack.refs["ImageQueue"] = "http://127.0.0.1:4577/123456789012/local-ImageQueue"
    raw = stack.functions(resolve_environment=False)
    return {
        name: local_environment(spec.environment, raw[name].environment, stack.resources, ENDPOINTS, environ={})
        for name, spec in stack.functions().items()
    }


def test_setting_names_are_the_settings_models_fields():
    from retail_pulse.settings import Settings

    assert list(setting_names()) == [name.upper() for name in Settings.field_names()]
    assert {"ALLOW_PRIVATE_IMAGE_HOSTS", "CALLBACK_SIGNING_SECRET_ARN", "DOWNLOAD_ATTEMPTS"} <= set(setting_names())


def test_every_variable_a_function_is_given_is_declared():
    template = load_template()
    envs = _local_envs()
    generated = sam_template(template, envs)
    declared = set(generated["Globals"]["Function"]["Environment"]["Variables"])
    for name in api_functions(template):
        given = set(envs[name]) - RUNTIME_RESERVED
        assert given <= declared, (name, given - declared)
    assert {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", *LOCAL_DEFAULTS} <= declared
    assert set(setting_names()) <= declared
    assert not declared & RUNTIME_RESERVED  # CloudFormation and SAM refuse or override these


def test_only_api_functions_with_absolute_paths_and_api_events():
    template = load_template()
    generated = sam_template(template, _local_envs())
    functions = {k for k, v in generated["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions == {
        "SubmitFunction",
        "StatusFunction",
        "ReportsFunction",
        "JobsFunction",
        "WebFunction",
        "FilesFunction",
    }
    assert "ProcessImageFunction" not in functions and "JobsTable" not in generated["Resources"]
    for logical in functions:
        props = generated["Resources"][logical]["Properties"]
        assert Path(props["CodeUri"]).is_absolute() and Path(props["CodeUri"]).is_dir()
        assert {e["Type"] for e in props["Events"].values()} == {"Api"}
        assert "Policies" not in props and "Environment" not in props
    layer = generated["Resources"]["CommonLayer"]["Properties"]["ContentUri"]
    assert Path(layer).is_absolute() and Path(layer, "retail_pulse").is_dir()
    assert "Outputs" not in generated and generated["Resources"]["Api"] == template["Resources"]["Api"]


def test_env_json_points_containers_at_the_bridge():
    envs = _local_envs()
    out = env_json(envs, ENDPOINTS, "172.17.0.1", ["SubmitFunction"])
    submit = out["SubmitFunction"]
    assert submit["AWS_ENDPOINT_URL"] == "http://172.17.0.1:4566"
    assert submit["AWS_ENDPOINT_URL_SQS"] == "http://172.17.0.1:4577"
    assert submit["IMAGE_QUEUE_URL"] == "http://172.17.0.1:4577/123456789012/local-ImageQueue"
    assert submit["ALLOW_PRIVATE_IMAGE_HOSTS"] == "true" and submit["JOBS_TABLE_NAME"] == "local-JobsTable"
    assert not set(submit) & RUNTIME_RESERVED
    assert bound_ports(ENDPOINTS) == [4566, 4577]
    assert container_url("https://example.com/x", ENDPOINTS, "172.17.0.1") == "https://example.com/x"


def test_declared_variables_are_sorted_and_unique():
    names = declared_variables([{"B": "1", "A": "2"}, {"A": "3", "AWS_REGION": "x"}])
    assert names == sorted(set(names)) and "AWS_REGION" not in names and {"A", "B"} <= set(names)
