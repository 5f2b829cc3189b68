"""SQS consumer of the export queue: writes a job's results into one file of the data bucket, in
submission order, as a multipart upload (logic/exports.run_export), never whole in memory."""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from retail_pulse import handler_kit as kit
from retail_pulse.domain.retry import redelivery_delay_s
from retail_pulse.logic.exports import fail_export, run_export

HOLD_MARGIN_S = 30  # an export is not handed to a second consumer while this invocation may run
MAX_RECEIVES = 3  # the export queue's maxReceiveCount (template.yaml): then the export fails

logger = Logger()
# X-Ray patches botocore only: no trace header goes to image hosts or callback URLs (requests, httplib).
tracer = Tracer(patch_modules=kit.TRACED_MODULES)
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    failed: dict[str, str] = {}
    queue = kit.export_queue()
    for record in event.get("Records", []):
        try:
            export_id = str(json.loads(record["body"])["export_id"])
        except (ValueError, KeyError, TypeError):
            logger.error("malformed export message dropped", extra={"body": record.get("body")})
            continue
        receives = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
        try:
            queue.hold(record["receiptHandle"], context.get_remaining_time_in_millis() // 1000 + HOLD_MARGIN_S)
            exported = run_export(export_id, jobs=kit.jobs(), exports=kit.jobs(), files=kit.files())
        except Exception as exc:
            if receives >= MAX_RECEIVES:
                logger.exception("export failed on its last delivery", extra={"export_id": export_id})
                fail_export(export_id, str(exc), exports=kit.jobs())
                continue
            logger.exception("export failed; it starts again soon", extra={"export_id": export_id})
            try:
                queue.hold(record["receiptHandle"], redelivery_delay_s(receives))
            except Exception:
                logger.warning("could not shorten the export message's visibility")
            failed[record["messageId"]] = "export failed"
            continue
        logger.info("export", extra={"export_id": export_id, "outcome": exported.outcome, "rows": exported.rows})
        metrics.add_metric(name="ResultsExported", unit=MetricUnit.Count, value=exported.rows)
    kit.emit_storage_refusals(metrics)
    return kit.batch_response(event, context, failed)
