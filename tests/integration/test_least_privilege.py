"""Least privilege: every AWS call a function makes while it serves jobs through their whole life
(inline and manifest submits with an Idempotency-Key, the fan-out, processing, counting from the
stream, status, results and the feed, lists, pause, resume, cancel, retry, exports, visits, reports,
the dead-letter consumer, the stall sweeper) is an action its own policy in template.yaml grants, on
the resource it names (a DynamoDB index needs `<table>/index/*`; an S3 key the policy's prefix), and
no function holds a `*CrudPolicy`."""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from datetime import datetime, timedelta

import botocore.client
import pytest
from harness import LambdaContext, make_image, sqs_event
from reliability import record

from devkit.lambda_runtime import load_handler
from devkit.template import Stack

# The actions of the SAM policy templates the template uses (SAM's policy_templates.json), and the
# property naming the one resource each grants them on.
SAM_POLICY_ACTIONS = {
    "SNSPublishMessagePolicy": ({"sns:Publish"}, "TopicName"),
    "SQSSendMessagePolicy": ({"sqs:SendMessage*", "sqs:ChangeMessageVisibility*"}, "QueueName"),
    "AWSSecretsManagerGetSecretValuePolicy": ({"secretsmanager:GetSecretValue"}, "SecretArn"),
}
# IAM actions that authorise an API call under another name (S3's multipart parts are PutObject).
S3_ACTION_OF = {
    "HeadObject": "s3:GetObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
}
# A transaction is authorised action by action (DynamoDB's "Using IAM with transactions").
TRANSACT_ACTION_OF = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def shape(resource) -> str:
    """A template Resource as the recorder names what a call touches: `<LogicalId>[<path>]`, e.g.
    `JobsTable`, `JobsTable/index/*`, `DataBucket/uploads/*`, `ImageQueue`."""
    if isinstance(resource, dict) and "Ref" in resource:
        return resource["Ref"]
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        target = resource["Fn::GetAtt"]
        return target[0] if isinstance(target, list) else str(target).split(".")[0]
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        m = re.fullmatch(r"\$\{(\w+)\.Arn\}(.*)", resource["Fn::Sub"])
        assert m, resource
        return m.group(1) + m.group(2)
    raise AssertionError(f"a resource this test cannot read: {resource}")


class Grant:
    """What one function's policy allows: (action pattern, resource patterns) pairs."""

    def __init__(self, properties: dict) -> None:
        self.rules: list[tuple[str, list[str]]] = []
        for policy in properties.get("Policies", []):
            for name, body in policy.items():
                if name == "Statement":
                    for statement in body:
                        actions, resources = statement["Action"], statement["Resource"]
                        shapes = [shape(r) for r in (resources if isinstance(resources, list) else [resources])]
                        self.rules += [(a, shapes) for a in ([actions] if isinstance(actions, str) else actions)]
                    continue
                actions, names = SAM_POLICY_ACTIONS[name]  # any other SAM template: not understood here
                self.rules += [(a, [shape(body[names])]) for a in actions]

    def allows(self, action: str, resource: str) -> bool:
        return any(
            fnmatch.fnmatchcase(action, pattern) and any(fnmatch.fnmatchcase(resource, r) for r in resources)
            for pattern, resources in self.rules
        )


class CallsByFunction:
    """Records (action, resource) per function for every botocore call made while its handler runs
    (its worker threads' too: handlers are invoked one at a time)."""

    def __init__(self, stack) -> None:
        self.calls: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.current: str | None = None
        self.logical = {physical: logical for logical, physical in stack.stack.refs.items()}

    def wrap(self, function: str, handler):
        def running(event, context):
            self.current = function
            try:
                return handler(event, context)
            finally:
                self.current = None

        return running

    def made(self, service: str, operation: str, params: dict) -> list[tuple[str, str]]:  # noqa: PLR0911 - one per service
        if service == "dynamodb":
            if operation == "TransactWriteItems":
                return [
                    (TRANSACT_ACTION_OF[op], self.logical[body["TableName"]])
                    for item in params["TransactItems"]
                    for op, body in item.items()
                ]
            tables = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", {}))
            index = "/index/*" if params.get("IndexName") else ""
            return [(f"dynamodb:{operation}", self.logical[t] + index) for t in tables]
        if service == "s3":
            action = S3_ACTION_OF.get(operation, f"s3:{operation}")
            if action == "s3:GetObject" and params.get("VersionId"):
                action = "s3:GetObjectVersion"
            key = params.get("Key")
            return [(action, "DataBucket" + (f"/{key}" if key else ""))]
        if service == "sqs":
            return [(f"sqs:{operation}", self.logical[params["QueueUrl"]])]
        if service == "sns":
            return [(f"sns:{operation}", self.logical[params["TopicArn"]])]
        if service == "secretsmanager":
            return [(f"secretsmanager:{operation}", self.logical[params["SecretId"]])]
        return [(f"{service}:{operation}", "?")]

    def patch(self, monkeypatch, stack) -> None:
        for spec in stack.stack.functions().values():
            name = spec.code_uri.name
            module = getattr(stack, name, None)
            if module is not None and hasattr(module, "lambda_handler"):
                monkeypatch.setattr(module, "lambda_handler", self.wrap(name, module.lambda_handler))
        counting = stack.stack.functions()["CountResultsFunction"]
        stack.stream_handlers[counting.logical_id] = self.wrap("count_results", load_handler(counting))
        original = botocore.client.BaseClient._make_api_call
        recorder = self

        def recording(client, operation_name, api_params):
            if recorder.current is not None:
                service = client.meta.service_model.endpoint_prefix
                recorder.calls[recorder.current].update(recorder.made(service, operation_name, api_params))
            return original(client, operation_name, api_params)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)


@pytest.fixture
def png(image_server):
    return image_server.add("/least-privilege/a.png", make_image("PNG", 40, 30), "image/png")


def visits(urls: list[str], store: str = "RP00001") -> list[dict]:
    return [{"store_id": store, "image_url": urls, "visit_time": "2024-03-15T10:00:00Z"}]


def test_no_function_holds_a_crud_policy():
    for name, spec in Stack().resources.items():
        if spec["Type"] != "AWS::Serverless::Function":
            continue
        names = {k for p in spec["Properties"].get("Policies", []) if isinstance(p, dict) for k in p}
        assert not {n for n in names if n.endswith("CrudPolicy")}, (name, names)


def test_every_call_a_function_makes_is_granted_by_its_own_policy(stack, png, image_server, monkeypatch):
    monkeypatch.setenv("CALLBACK_SIGNING_SECRET_ARN", stack.stack.refs["CallbackSigningSecret"])  # callbacks on
    stack.reset_caches()
    calls = CallsByFunction(stack)
    calls.patch(monkeypatch, stack)
    missing = image_server.url("/least-privilege/missing.png")
    hook = image_server.url("/least-privilege/hook")  # callbacks are signed: the secret is read
    body = {"count": 1, "visits": visits([png, png, missing]), "labels": {"team": "lp"}, "callback_url": hook}
    code, accepted = stack.api("POST", "/api/submit", body=body, headers={"Idempotency-Key": "lp-1"})
    assert code == 201, accepted
    job_id = accepted["job_id"]
    code, _ = stack.api("POST", "/api/jobs/pause", query={"jobid": job_id})
    assert code == 200
    stack.drain()  # the paused job's images are parked
    code, _ = stack.api("POST", "/api/jobs/resume", query={"jobid": job_id})
    assert code == 200
    stack.drain()
    for path, query in (
        ("/api/status", {"jobid": job_id}),
        ("/api/results", {"jobid": job_id}),
        ("/api/results", {"jobid": job_id, "order": "processed"}),
        ("/api/jobs", {}),
        ("/api/jobs", {"status": "failed"}),
        ("/api/jobs", {"label": "team:lp"}),
        ("/api/visits", {"area": "7100015", "storeid": "RP00001"}),
        ("/api/reports/areas", {}),
        ("/api/reports/stores", {"area": "7100015"}),
        ("/api/stores", {"q": "RP"}),
        ("/api/callbacks/key", {}),
    ):
        code, answer = stack.api("GET", path, query=query)
        assert code == 200, (path, answer)
    # A job that ends at submit (every store unknown) sends its notice from submit itself.
    ended = {"count": 1, "visits": visits([png], store="NOPE"), "callback_url": hook}
    code, accepted = stack.api("POST", "/api/submit", body=ended)
    assert code == 201, accepted
    code, export = stack.api("POST", "/api/results/export", query={"jobid": job_id})
    assert code == 202, export
    assert stack.export_all() == 1
    code, ready = stack.api("GET", "/api/results/export", query={"export_id": export["export_id"]})
    assert ready["state"] == "ready", ready
    code, retry = stack.api("POST", "/api/jobs/retry", query={"jobid": job_id})
    assert code == 201, retry
    code, answer = stack.api("POST", "/api/jobs/cancel", query={"jobid": retry["job_id"]})
    assert code == 200, answer
    # A manifest job: uploaded through its presigned URL, fanned out, processed.
    manifest = f"store_id,image_url,visit_time\nRP00002,{png},2024-03-15T10:00:00Z\nNOPE,{png},2024-03-15T10:00:00Z\n"
    manifest_job = stack.submit_manifest(manifest.encode())
    assert stack.fan_out_all() >= 1
    stack.drain()
    # A dead-lettered message of a new job, and the sweeper on a job whose other message was lost.
    code, other = stack.api("POST", "/api/submit", body={"count": 1, "visits": visits([png, png])})
    [dead, lost] = stack.receive(2)
    response = stack.dead_letter.lambda_handler(sqs_event([dead], stack.dlq_arn), LambdaContext())
    assert response["batchItemFailures"] == []
    stack.pump_streams()
    del lost  # never delivered: the sweeper, run 2,200 s later, fails it

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(seconds=2_200)

    monkeypatch.setattr(stack.stall_sweeper, "datetime", Later)
    stack.stall_sweeper.lambda_handler({"source": "aws.events"}, LambdaContext())
    stack.pump_streams()
    code, swept = stack.api("GET", "/api/status", query={"jobid": other["job_id"]})
    assert swept["status"] == "failed", swept
    code, fanned = stack.api("GET", "/api/status", query={"jobid": manifest_job})
    assert fanned["status"] == "failed" and fanned["progress"]["total"] == 2, fanned.get("manifest_errors")

    functions = {spec.code_uri.name: spec.logical_id for spec in stack.stack.functions().values()}
    resources = Stack().resources
    checked, refused = 0, {}
    for function, made in sorted(calls.calls.items()):
        grant = Grant(resources[functions[function]]["Properties"])
        if not_granted := sorted(f"{a} on {r}" for a, r in made if not grant.allows(a, r)):
            refused[function] = not_granted
        checked += len(made)
    assert not refused, f"calls not in the calling function's policy: {refused}"
    signers = {
        f for f, made in calls.calls.items() if ("secretsmanager:GetSecretValue", "CallbackSigningSecret") in made
    }
    assert signers, "no callback was signed: the secret's grant went unchecked"
    everyone = {"submit", "process_image", "count_results", "status", "jobs", "reports", "dead_letter", "files"}
    assert everyone | {"fan_out", "export_results", "stall_sweeper"} <= set(calls.calls), set(calls.calls)
    record("least privilege (in-process): every AWS call of every function is in its own policy", checked)
