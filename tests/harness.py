"""What tests share beyond fixtures: real API Gateway / SQS event shapes, the in-process stack of
handlers on moto (`Handlers`), and re-exports of the dev kit (Lambda context, function loader, image
servers). Fixtures are in conftest.py files; tests import helpers from here."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

from devkit.images import ImageServer, make_image
from devkit.lambda_runtime import LambdaContext, load_function, load_handler
from devkit.routing import function_routes
from devkit.stream_sources import StackStreams, in_process_invoker
from devkit.streams import streams_client
from devkit.template import ROOT, FunctionSpec, Stack
from retail_pulse import handler_kit

SIGNING_SECRET = "test-signing-secret"  # noqa: S105 - a test key
EVENTS = Path(__file__).parent / "events"
SHARED_STORE_MASTER = ROOT.parent / "shared" / "data" / "StoreMasterAssignment.csv"
# Tests import these from here.
__all__ = [
    "ROOT",
    "CallbackServer",
    "ImageServer",
    "LambdaContext",
    "Stack",
    "load_function",
    "make_image",
    "topic_inbox",
]


def create_keyed_table(name: str, stream_view: str | None = None, client=None) -> None:
    """A table keyed like JobsTable (pk, sk), with a stream of `stream_view` if given, through
    `client` (default: the in-process moto's)."""
    stream = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": stream_view}} if stream_view else {}
    (client or boto3.client("dynamodb")).create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        **stream,
    )


def api_event(
    method: str,
    path: str,
    *,
    body: str | None = None,
    query: dict | None = None,
    headers=None,
    api_key_id: str | None = None,
) -> dict:
    """A REST proxy event; `api_key_id` is the client's key id as API Gateway fills it on a keyed
    route (None: no key checked, the handlers' default client)."""
    event = json.loads((EVENTS / "api_gateway_rest_proxy.json").read_text())
    if api_key_id is not None:
        event["requestContext"]["identity"]["apiKey"] = f"key-of-{api_key_id}"
        event["requestContext"]["identity"]["apiKeyId"] = api_key_id
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = path
    # API Gateway REST matches "/api/submit/" to the resource "/api/submit" and keeps the raw path.
    event["resource"] = event["requestContext"]["resourcePath"] = path.rstrip("/") or "/"
    event["requestContext"]["path"] = f"/dev{path}"
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    event["body"] = body
    if query:
        event["queryStringParameters"] = {k: str(v) for k, v in query.items()}
        event["multiValueQueryStringParameters"] = {k: [str(v)] for k, v in query.items()}
    for key, value in (headers or {}).items():
        event["headers"][key] = value
        event["multiValueHeaders"][key] = [value]
    return event


def sqs_event(messages: list[dict], queue_arn: str) -> dict:
    """`messages` as ReceiveMessage returns them (Body, MessageId, ReceiptHandle, Attributes)."""
    template = json.loads((EVENTS / "sqs_record.json").read_text())
    records = []
    for m in messages:
        record = copy.deepcopy(template)
        record["messageId"] = m["MessageId"]
        record["receiptHandle"] = m["ReceiptHandle"]
        record["body"] = m["Body"]
        record["md5OfBody"] = hashlib.md5(m["Body"].encode()).hexdigest()  # noqa: S324 - SQS's own checksum
        record["attributes"].update(m.get("Attributes", {}))
        record["eventSourceARN"] = queue_arn
        records.append(record)
    return {"Records": records}


class Handlers:
    """Runs the stack's functions in-process against moto, and drives the queue and the table
    streams like their event source mappings."""

    def __init__(self, stack: Stack, sqs) -> None:
        self.stack = stack
        self.sqs = sqs
        self.submit = load_function("submit")
        self.status = load_function("status")
        self.process_image = load_function("process_image")
        self.reports = load_function("reports")
        self.jobs = load_function("jobs")
        self.dead_letter = load_function("dead_letter")
        self.stall_sweeper = load_function("stall_sweeper")
        self.files = load_function("files")
        self.fan_out = load_function("fan_out")
        self.export_results = load_function("export_results")
        modules = {m.__name__: m for m in (self.submit, self.status, self.reports, self.jobs, self.files)}
        self.routes = function_routes(stack, lambda spec: modules.get(f"fn_{spec.code_uri.name}_app"))
        self.queue_url = stack.refs["ImageQueue"]
        self.queue_arn = stack.attrs[("ImageQueue", "Arn")]
        self.dlq_url = stack.refs["ImageDeadLetterQueue"]
        self.dlq_arn = stack.attrs[("ImageDeadLetterQueue", "Arn")]
        functions = (self.submit, self.status, self.process_image, self.reports, self.jobs, self.dead_letter)
        workers = (self.stall_sweeper, self.files, self.fan_out, self.export_results)
        self._modules_by_name = {m.__name__: m for m in (*functions, *workers)}
        self.fanout_url = stack.refs["FanOutQueue"]
        self.export_url = stack.refs["ExportQueue"]
        # Handlers of stream-triggered functions by logical id: loaded from their CodeUri when first
        # needed; a test may put its own here.
        self.stream_handlers: dict[str, Callable] = {}
        self.streams = StackStreams(stack, streams_client(), self._stream_invoker)

    def _stream_invoker(self, spec: FunctionSpec):
        def handler() -> Callable:
            if spec.logical_id not in self.stream_handlers:
                module_name, attribute = spec.handler.rsplit(".", 1)
                loaded = self._modules_by_name.get(f"fn_{spec.code_uri.name}_{module_name}")
                self.stream_handlers[spec.logical_id] = getattr(loaded, attribute) if loaded else load_handler(spec)
            return self.stream_handlers[spec.logical_id]

        return in_process_invoker(handler, lazy=True)

    def pump_streams(self, function: str | None = None) -> int:
        """Deliver the table streams' records (the template's `Type: DynamoDB` events) to their
        functions' handlers, synchronously, until caught up or a batch fails; returns the records
        delivered. A no-op (0) when the template has no stream event source."""
        return self.streams.pump(function)

    def reset_caches(self) -> None:
        handler_kit.clear_caches()
        self.submit.idempotent_submit.cache_clear()

    def api(self, method: str, path: str, *, body=None, query=None, headers=None, key=None) -> tuple[int, dict]:
        """One API request through the route's handler; `key`: the caller's API key id."""
        # The stream consumer runs in the background on AWS (about a second behind): here it catches
        # up before each request, so what a test reads follows from what it wrote.
        self.pump_streams()
        response = self.raw_api(method, path, body=body, query=query, headers=headers, key=key)
        return response["statusCode"], json.loads(response["body"])

    def raw_api(self, method: str, path: str, *, body=None, query=None, headers=None, key=None) -> dict:
        """The function's whole proxy response (status, headers, body) to one API Gateway event."""
        if body is not None and not isinstance(body, str):
            body = json.dumps(body)
        event = api_event(method, path, body=body, query=query, headers=headers, api_key_id=key)
        route, _, _ = self.routes.match(method, path)
        assert route is not None, f"no route for {method} {path} in template.yaml"
        return route.target.lambda_handler(event, LambdaContext())

    def submit_job(self, visits: list[dict], key: str | None = None) -> str:
        status, body = self.api("POST", "/api/submit", body={"count": len(visits), "visits": visits}, key=key)
        assert status == 201, body
        return body["job_id"]

    def receive(self, max_messages: int = 10, visibility: int | None = None) -> list[dict]:
        kwargs = {"VisibilityTimeout": visibility} if visibility is not None else {}
        return self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            **kwargs,
        ).get("Messages", [])

    def invoke_process(self, messages: list[dict]) -> set[str]:
        """Run process_image on these messages; returns the message ids it reported as failed."""
        response = self.process_image.lambda_handler(sqs_event(messages, self.queue_arn), LambdaContext())
        return {f["itemIdentifier"] for f in response["batchItemFailures"]}

    def drain(self, *, delete: bool = True, max_batches: int = 1000) -> int:
        """Deliver batches until the queue is empty, deleting what succeeded (as the ESM does)."""
        batches = 0
        while batches < max_batches:
            messages = self.receive(visibility=0 if not delete else None)
            if not messages:
                self.pump_streams()
                return batches
            failed = self.invoke_process(messages)
            batches += 1
            if delete:
                for m in messages:
                    if m["MessageId"] not in failed:
                        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        raise AssertionError("queue did not drain")

    # -- jobs of any size: uploads, the fan-out, exports -------------------------------------------
    def upload(self, data: bytes, *, size: bool = True, key: str | None = None) -> str:
        """POST /api/uploads, then PUT `data` to the presigned URL as a client would; the upload_id."""
        import requests

        status, created = self.api("POST", "/api/uploads", body={"size": len(data)} if size else None, key=key)
        assert status == 201, created
        response = requests.put(created["upload_url"], data=data, timeout=30)  # moto answers it (mock_aws)
        assert response.status_code == 200, response.text
        return created["upload_id"]

    def submit_manifest(self, data: bytes, key: str | None = None, **extra) -> str:
        body = {"manifest": self.upload(data, key=key), **extra}
        status, body = self.api("POST", "/api/submit", body=body, key=key)
        assert status == 201, body
        return body["job_id"]

    def run_queue(self, url: str, handler, *, max_messages: int | None = None, visibility: int | None = None) -> int:
        """Deliver a work queue's messages one at a time to `handler` (batch size 1, as its event
        source), deleting what succeeded, until it is empty (or `max_messages` were delivered);
        returns the invocations."""
        invocations = 0
        while invocations < (max_messages or 1000):
            kwargs = {"VisibilityTimeout": visibility} if visibility is not None else {}
            got = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=1,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                **kwargs,
            ).get("Messages", [])
            if not got:
                return invocations
            arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            response = handler(sqs_event(got, arn), LambdaContext())
            invocations += 1
            if not response["batchItemFailures"]:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        if max_messages:
            return invocations
        raise AssertionError("work queue did not drain")

    def fan_out_all(self, **kwargs) -> int:
        """Run the fan-out queue dry (each job checked, then enqueued; hand-ons included)."""
        return self.run_queue(self.fanout_url, self.fan_out.lambda_handler, **kwargs)

    def export_all(self, **kwargs) -> int:
        return self.run_queue(self.export_url, self.export_results.lambda_handler, **kwargs)

    def results(self, job_id: str, key: str | None = None) -> list[dict]:
        out, token = [], None
        while True:
            query = {"jobid": job_id, "limit": 1000} | ({"next_token": token} if token else {})
            status, page = self.api("GET", "/api/results", query=query, key=key)
            assert status == 200, page
            out += page["results"]
            token = page["next_token"]
            if not token:
                return out

    def items(self) -> list[dict]:
        ddb = boto3.client("dynamodb")
        return ddb.scan(TableName=self.stack.refs["JobsTable"])["Items"]

    def queue_depth(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


class CallbackServer:
    """Records every POST (headers and body) and answers 204."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict, bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.calls.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def topic_inbox(topic_arn: str, name: str, filter_policy: dict | None = None) -> str:
    """An SQS queue subscribed to the topic (raw delivery, with `filter_policy` if given): its URL."""
    sqs = boto3.client("sqs")
    inbox = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"RawMessageDelivery": "true"}
    if filter_policy is not None:
        attributes["FilterPolicy"] = json.dumps(filter_policy)
    boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return inbox
