"""POST /api/submit: validate, write the job, enqueue one message per image."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths

from retail_pulse.api import json_response, register_error_handlers
from retail_pulse.dynamodb_jobs import DynamoJobRepository
from retail_pulse.logic.submit import submit_job
from retail_pulse.settings import Settings, get_settings
from retail_pulse.sqs_queue import SqsImageQueue
from retail_pulse.store_master_source import load_store_master

logger = Logger()
app = APIGatewayRestResolver()  # REST API: "/api/submit/" resolves here too, as API Gateway routes it
register_error_handlers(app, logger)


@lru_cache(maxsize=1)
def dependencies() -> tuple[Settings, DynamoJobRepository, SqsImageQueue]:
    settings = get_settings()
    return (
        settings,
        DynamoJobRepository(settings.jobs_table_name),
        SqsImageQueue(settings.image_queue_url, settings.enqueue_concurrency),
    )


@app.post("/api/submit")
def submit():
    settings, jobs, queue = dependencies()
    stores = load_store_master(settings.effective_store_master_uri)
    accepted = submit_job(app.current_event.decoded_body, settings=settings, jobs=jobs, queue=queue, stores=stores)
    logger.info("job accepted", extra={"job_id": accepted["job_id"], "images": accepted["total"]})
    return json_response(201, accepted)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
