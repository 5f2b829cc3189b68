"""GET /api/status, /api/results and /api/health: reads only."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths

from retail_pulse.api import json_response, register_error_handlers
from retail_pulse.dynamodb_jobs import DynamoJobRepository
from retail_pulse.logic.status import job_results, job_status
from retail_pulse.settings import get_settings

logger = Logger()
app = APIGatewayRestResolver()
register_error_handlers(app, logger)


@lru_cache(maxsize=1)
def jobs() -> DynamoJobRepository:
    return DynamoJobRepository(get_settings().jobs_table_name)


@app.get("/api/status")
def status():
    return json_response(200, job_status(app.current_event.get_query_string_value("jobid"), jobs=jobs()))


@app.get("/api/results")
def results():
    query = app.current_event.get_query_string_value
    body = job_results(query("jobid"), query("limit"), query("next_token"), jobs=jobs())
    return json_response(200, body)


@app.get("/api/health")
def health():
    return json_response(200, {"status": "ok"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
