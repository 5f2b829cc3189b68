"""Reads template.yaml (CloudFormation tags included) and provisions its resources on any endpoint.

The tests and the local stack both build their tables, queues and function environments from
here, so neither can drift from the template.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"


class _CfnLoader(yaml.SafeLoader):
    pass


def _construct_tag(loader: yaml.Loader, tag_suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE) -> dict:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@dataclass
class ApiRoute:
    function: str
    path: str
    method: str
    api_key_required: bool = False  # the event's Auth.ApiKeyRequired, else its API's


@dataclass
class SqsSource:
    function: str
    queue: str  # logical id
    batch_size: int
    max_concurrency: int
    report_item_failures: bool
    enabled: bool = True  # SAM's `Enabled`: a disabled event source mapping polls nothing


@dataclass
class CorsSpec:
    """An Api's `Cors` as SAM turns it into an OPTIONS method (mock integration) on every path."""

    allow_origin: str
    allow_methods: str | None = None  # None: SAM lists the path's own methods and OPTIONS
    allow_headers: str | None = None
    max_age: str | None = None
    allow_credentials: bool = False


@dataclass
class GatewayResponseSpec:
    """One entry of an Api's `GatewayResponses` (API Gateway's own errors)."""

    status_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)  # content type -> mapping template


@dataclass
class RestApiSpec:
    """What the local gateway needs of an `AWS::Serverless::Api` (parameters resolved)."""

    logical_id: str
    stage: str
    cors: CorsSpec | None = None
    gateway_responses: dict[str, GatewayResponseSpec] = field(default_factory=dict)
    binary_media_types: list[str] = field(default_factory=list)
    preflight_needs_key: bool = False  # Auth.ApiKeyRequired and AddApiKeyRequiredToCorsPreflight


def _unquote(value: Any) -> str:
    """SAM's Cors and GatewayResponses values are header values in single quotes: "'*'" -> "*"."""
    text = str(value)
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text


@dataclass
class StreamSource:
    """A `Type: DynamoDB` event: the Lambda event source mapping of a table's stream (defaults as Lambda's)."""

    function: str
    table: str  # logical id of the table whose stream it reads (`Stream: !GetAtt <Table>.StreamArn`)
    starting_position: str = "TRIM_HORIZON"  # or LATEST
    batch_size: int = 100
    batching_window_s: float = 0.0  # MaximumBatchingWindowInSeconds
    parallelization_factor: int = 1
    max_retry_attempts: int = -1  # -1: retried until the record expires from the stream
    bisect_on_error: bool = False  # BisectBatchOnFunctionError
    tumbling_window_s: float = 0.0  # TumblingWindowInSeconds: events then name their shard and carry state
    report_item_failures: bool = False  # FunctionResponseTypes: [ReportBatchItemFailures]
    filters: list[dict] = field(default_factory=list)  # FilterCriteria.Filters[].Pattern, parsed
    enabled: bool = True


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, Any]
    layer_dirs: list[Path] = field(default_factory=list)
    routes: list[ApiRoute] = field(default_factory=list)
    sqs_sources: list[SqsSource] = field(default_factory=list)
    schedules: list[str] = field(default_factory=list)  # rate(...) / cron(...) expressions
    stream_sources: list[StreamSource] = field(default_factory=list)


class Stack:
    """The template with its parameters and the physical names of what was provisioned."""

    def __init__(
        self,
        template: dict | None = None,
        parameters: dict[str, str] | None = None,
        prefix: str = "rp",
        root: Path = ROOT,
    ):
        self.template = template or load_template()
        self.prefix = prefix
        self.root = root  # CodeUri and ContentUri are relative to the template's folder
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in self.template.get("Parameters", {}).items()
        }
        self.parameters.update(parameters or {})
        self.refs: dict[str, str] = {}
        self.attrs: dict[tuple[str, str], str] = {}

    @classmethod
    def from_file(cls, path: Path, parameters: dict[str, str] | None = None, prefix: str = "rp") -> Stack:
        """Another template than template.yaml (tests of the local stack); its paths relative to it."""
        path = Path(path).resolve()
        return cls(load_template(path), parameters, prefix, root=path.parent)

    @property
    def resources(self) -> dict[str, dict]:
        return self.template["Resources"]

    def of_type(self, kind: str) -> dict[str, dict]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}

    # -- intrinsic functions --------------------------------------------------------------
    def resolve(self, value: Any) -> Any:  # noqa: PLR0911 - one branch per intrinsic
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            name = value["Ref"]
            if name in self.parameters:
                return self.parameters[name]
            if name == "AWS::Region":
                return REGION
            if name == "AWS::AccountId":
                return ACCOUNT
            if name not in self.refs:
                raise KeyError(f"Ref {name} not provisioned")
            return self.refs[name]
        if set(value) == {"Fn::GetAtt"}:
            logical, attr = value["Fn::GetAtt"]
            return self.attrs[(logical, attr)]
        if set(value) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), value["Fn::Sub"])
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, name: str) -> str:
        if "." in name:
            return str(self.resolve({"Fn::GetAtt": name.split(".", 1)}))
        return str(self.resolve({"Ref": name}))

    # -- provisioning ---------------------------------------------------------------------
    def provision(
        self,
        dynamodb: Any,
        sqs: Any,
        s3: Any | None = None,
        sns: Any | None = None,
        *,
        secretsmanager: Any | None = None,
        secret_values: dict[str, str] | None = None,
        existing_ok: bool = False,
    ) -> Stack:
        """Creates the template's topics, tables, queues, buckets and secrets. `existing_ok`: tables
        that already exist (a restored local state) are kept as they are, if their keys and indexes
        are the template's (ValueError otherwise); topics, queues, buckets and secrets are created
        idempotently. A secret's value is `secret_values[logical]`, else generated as its
        GenerateSecretString asks (without a Secrets Manager client: only its ARN is known)."""
        for logical in self.of_type("AWS::SNS::Topic"):
            # Without an SNS client the ARN is still known (functions' environment names it).
            name = f"{self.prefix}-{logical}"
            arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
            if sns is not None:
                arn = sns.create_topic(Name=name)["TopicArn"]
            self.refs[logical] = arn
            self.attrs[(logical, "TopicName")] = name
            self.attrs[(logical, "TopicArn")] = arn
        for logical, res in self.of_type("AWS::DynamoDB::Table").items():
            self._create_table(dynamodb, logical, res["Properties"], existing_ok)
        queues = self.of_type("AWS::SQS::Queue")
        # Dead-letter queues first: a redrive policy names their ARN.
        for logical in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q].get("Properties", {})):
            self._create_queue(sqs, logical, queues[logical].get("Properties", {}))
        for logical, res in self.of_type("AWS::S3::Bucket").items():
            name = f"{self.prefix}-{logical.lower()}"
            if s3 is not None:
                s3.create_bucket(Bucket=name)
                self._configure_bucket(s3, name, res.get("Properties", {}))
            self.refs[logical] = name
            self.attrs[(logical, "Arn")] = f"arn:aws:s3:::{name}"
        for logical, res in self.of_type("AWS::SecretsManager::Secret").items():
            self._create_secret(secretsmanager, logical, res.get("Properties", {}), (secret_values or {}).get(logical))
        return self

    def _create_secret(self, client: Any | None, logical: str, props: dict, chosen: str | None) -> None:
        name = f"{self.prefix}-{logical}"
        arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}"
        if client is not None:
            length = int(props.get("GenerateSecretString", {}).get("PasswordLength", 32))
            value = chosen if chosen is not None else secrets.token_hex(length)[:length]  # no punctuation
            try:
                arn = client.create_secret(Name=name, SecretString=value)["ARN"]
            except client.exceptions.ResourceExistsException:  # a restored local state keeps its value...
                arn = client.describe_secret(SecretId=name)["ARN"]
                if chosen is not None:  # ...unless one is chosen now
                    client.put_secret_value(SecretId=arn, SecretString=chosen)
        self.refs[logical] = arn
        self.attrs[(logical, "Id")] = arn

    def _configure_bucket(self, s3: Any, name: str, props: dict) -> None:
        """What a bucket's clients meet: its versioning (object versions) and CORS (browsers)."""
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        rules = self.resolve(props.get("CorsConfiguration", {}).get("CorsRules"))
        if rules:
            # CloudFormation's names -> the S3 API's.
            names = {"Id": "ID", "ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}
            cors = [{names.get(k, k): int(v) if k == "MaxAge" else v for k, v in rule.items()} for rule in rules]
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": cors})

    def _create_table(self, dynamodb: Any, logical: str, props: dict, existing_ok: bool = False) -> None:
        name = f"{self.prefix}-{logical}"
        self.refs[logical] = name
        self.attrs[(logical, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        if existing_ok and _existing_table(dynamodb, name, props):
            if props.get("StreamSpecification"):  # restored with its stream: the sources need its ARN
                described = dynamodb.describe_table(TableName=name)["Table"]
                self.attrs[(logical, "StreamArn")] = described["LatestStreamArn"]
            return
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = [
                {**index, "WarmThroughput": self._units(index["WarmThroughput"])}
                if "WarmThroughput" in index
                else index
                for index in props["GlobalSecondaryIndexes"]
            ]
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        if props.get("WarmThroughput"):  # the DynamoDB limits model starts the table's budget there
            kwargs["WarmThroughput"] = self._units(props["WarmThroughput"])
        stream = props.get("StreamSpecification")
        if stream:
            # CloudFormation names only the view type; the API also wants StreamEnabled.
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        dynamodb.create_table(**kwargs)
        if stream:
            # `!GetAtt <Table>.StreamArn` (the stream event sources name their table by it).
            described = dynamodb.describe_table(TableName=name)["Table"]
            self.attrs[(logical, "StreamArn")] = described["LatestStreamArn"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)

    def _units(self, throughput: dict) -> dict[str, int]:
        """A WarmThroughput block with its parameters resolved to numbers."""
        return {key: int(self.resolve(value)) for key, value in throughput.items()}

    def _create_queue(self, sqs: Any, logical: str, props: dict) -> None:
        name = f"{self.prefix}-{logical}"
        attributes = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
            if key in props:
                attributes[key] = str(props[key])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(self.resolve(props["RedrivePolicy"]))
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.refs[logical] = url
        self.attrs[(logical, "Arn")] = arn
        self.attrs[(logical, "QueueName")] = name
        self.attrs[(logical, "QueueUrl")] = url

    # -- API ------------------------------------------------------------------------------
    def rest_api(self, logical_id: str | None = None) -> RestApiSpec | None:
        """The template's (first, or named) `AWS::Serverless::Api`, with Globals.Api applied."""
        apis = self.of_type("AWS::Serverless::Api")
        if not apis:
            return None
        logical_id = logical_id or next(iter(apis))
        props = {**self.template.get("Globals", {}).get("Api", {}), **apis[logical_id].get("Properties", {})}
        cors = self.resolve(props.get("Cors"))
        cors_spec = None
        if cors:
            if isinstance(cors, str):  # `Cors: "'origin'"` is shorthand for AllowOrigin alone
                cors = {"AllowOrigin": cors}
            cors_spec = CorsSpec(
                allow_origin=_unquote(cors["AllowOrigin"]),
                allow_methods=_unquote(cors["AllowMethods"]) if "AllowMethods" in cors else None,
                allow_headers=_unquote(cors["AllowHeaders"]) if "AllowHeaders" in cors else None,
                max_age=_unquote(cors["MaxAge"]) if "MaxAge" in cors else None,
                allow_credentials=str(cors.get("AllowCredentials", False)).lower() == "true",
            )
        responses = {}
        for kind, raw in (props.get("GatewayResponses") or {}).items():
            spec = self.resolve(raw)
            responses[kind] = GatewayResponseSpec(
                status_code=int(spec["StatusCode"]) if "StatusCode" in spec else None,
                headers={k: _unquote(v) for k, v in spec.get("ResponseParameters", {}).get("Headers", {}).items()},
                templates=dict(spec.get("ResponseTemplates", {})),
            )
        auth = props.get("Auth", {})
        # SAM puts the key requirement on the generated OPTIONS methods too unless told not to.
        preflight_needs_key = bool(auth.get("ApiKeyRequired")) and bool(
            auth.get("AddApiKeyRequiredToCorsPreflight", True)
        )
        return RestApiSpec(
            logical_id=logical_id,
            stage=str(self.resolve(props.get("StageName", "Prod"))),
            cors=cors_spec,
            gateway_responses=responses,
            # SAM writes "/" in a media type as "~1" (a JSON pointer escape), as API Gateway's API does.
            binary_media_types=[str(self.resolve(t)).replace("~1", "/") for t in props.get("BinaryMediaTypes", [])],
            preflight_needs_key=preflight_needs_key,
        )

    # -- functions ------------------------------------------------------------------------
    def _api_key_required(self, event_properties: dict) -> bool:
        api = self.resources.get((event_properties.get("RestApiId") or {}).get("Ref", ""), {})
        default = api.get("Properties", {}).get("Auth", {}).get("ApiKeyRequired", False)
        return bool(event_properties.get("Auth", {}).get("ApiKeyRequired", default))

    def functions(self, resolve_environment: bool = True) -> dict[str, FunctionSpec]:
        """The template's functions; environment values resolved once resources are provisioned."""
        globals_ = self.template.get("Globals", {}).get("Function", {})
        specs = {}
        for logical, res in self.of_type("AWS::Serverless::Function").items():
            props = res["Properties"]
            env = dict(globals_.get("Environment", {}).get("Variables", {}))
            env.update(props.get("Environment", {}).get("Variables", {}))
            spec = FunctionSpec(
                logical_id=logical,
                code_uri=self.root / props["CodeUri"],
                handler=props.get("Handler", globals_.get("Handler")),
                timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
                memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                environment={k: str(self.resolve(v)) if resolve_environment else v for k, v in env.items()},
                layer_dirs=[
                    self.root / self.resources[layer["Ref"]]["Properties"]["ContentUri"]
                    for layer in [*globals_.get("Layers", []), *props.get("Layers", [])]
                ],
            )
            for event in props.get("Events", {}).values():
                ev = event.get("Properties", {})
                if event["Type"] == "Api":
                    spec.routes.append(ApiRoute(logical, ev["Path"], ev["Method"].upper(), self._api_key_required(ev)))
                elif event["Type"] in ("Schedule", "ScheduleV2"):
                    spec.schedules.append(ev.get("Schedule") or ev.get("ScheduleExpression"))
                elif event["Type"] == "SQS":
                    queue_logical = ev["Queue"]["Fn::GetAtt"][0]
                    spec.sqs_sources.append(
                        SqsSource(
                            function=logical,
                            queue=queue_logical,
                            batch_size=int(ev.get("BatchSize", 10)),
                            max_concurrency=int(self.resolve(ev.get("ScalingConfig", {}).get("MaximumConcurrency", 2))),
                            report_item_failures="ReportBatchItemFailures" in ev.get("FunctionResponseTypes", []),
                            enabled=_true(self.resolve(ev.get("Enabled", True))),
                        )
                    )
                elif event["Type"] == "DynamoDB":
                    spec.stream_sources.append(self._stream_source(logical, ev))
            specs[logical] = spec
        return specs

    def _stream_source(self, function: str, ev: dict) -> StreamSource:
        stream = ev["Stream"]
        if not (isinstance(stream, dict) and "Fn::GetAtt" in stream and stream["Fn::GetAtt"][1] == "StreamArn"):
            raise ValueError(f"{function}: a DynamoDB event's Stream must be !GetAtt <Table>.StreamArn, not {stream!r}")
        patterns = [f["Pattern"] for f in ev.get("FilterCriteria", {}).get("Filters", [])]

        def value(key: str, default: Any) -> Any:
            return self.resolve(ev.get(key, default))

        return StreamSource(
            function=function,
            table=stream["Fn::GetAtt"][0],
            starting_position=str(value("StartingPosition", "TRIM_HORIZON")),
            batch_size=int(value("BatchSize", 100)),
            batching_window_s=float(value("MaximumBatchingWindowInSeconds", 0)),
            parallelization_factor=int(value("ParallelizationFactor", 1)),
            max_retry_attempts=int(value("MaximumRetryAttempts", -1)),
            bisect_on_error=_true(value("BisectBatchOnFunctionError", False)),
            tumbling_window_s=float(value("TumblingWindowInSeconds", 0)),
            report_item_failures="ReportBatchItemFailures" in ev.get("FunctionResponseTypes", []),
            # The Lambda API takes each pattern as a JSON string; accept a mapping written in YAML too.
            filters=[json.loads(p) if isinstance(p, str) else p for p in patterns],
            enabled=_true(value("Enabled", True)),
        )


def _true(value: Any) -> bool:
    """CloudFormation booleans may be written as strings ("true") or come from a parameter."""
    return value.lower() == "true" if isinstance(value, str) else bool(value)


def _existing_table(dynamodb: Any, name: str, props: dict) -> bool:
    """Whether table `name` exists; ValueError when it does with other keys or indexes than `props`."""
    try:
        table = dynamodb.describe_table(TableName=name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        return False

    def shape(keys: list, indexes: list) -> tuple:
        return (
            sorted((k["AttributeName"], k["KeyType"]) for k in keys),
            sorted(
                (i["IndexName"], tuple(sorted((k["AttributeName"], k["KeyType"]) for k in i["KeySchema"])))
                for i in indexes
            ),
        )

    saved = shape(table["KeySchema"], table.get("GlobalSecondaryIndexes", []))
    wanted = shape(props["KeySchema"], props.get("GlobalSecondaryIndexes", []))
    if saved != wanted:
        raise ValueError(f"table {name} exists with other keys or indexes than template.yaml defines")
    return True
