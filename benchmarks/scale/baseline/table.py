"""FROZEN COPY (f399a74's template.yaml, JobsTable): the old table, for the scale model's comparison.

No WarmThroughput, two visit GSIs (VisitsByStore, VisitsByArea: time-first sort keys), the job GSIs.
The queues were the same then as now (VisibilityTimeout 360, redrive to the DLQ after 5 receives).
"""

from __future__ import annotations

import yaml

OLD_JOBS_TABLE = yaml.safe_load(
    """
Type: AWS::DynamoDB::Table
Properties:
  BillingMode: PAY_PER_REQUEST
  AttributeDefinitions:
    - {AttributeName: pk, AttributeType: S}
    - {AttributeName: sk, AttributeType: S}
    - {AttributeName: visit_store, AttributeType: S}
    - {AttributeName: visit_store_sk, AttributeType: S}
    - {AttributeName: visit_area, AttributeType: S}
    - {AttributeName: visit_area_sk, AttributeType: S}
    - {AttributeName: job_list, AttributeType: S}
    - {AttributeName: job_list_sk, AttributeType: S}
    - {AttributeName: status, AttributeType: S}
    - {AttributeName: created_at, AttributeType: S}
    - {AttributeName: notice_due, AttributeType: S}
    - {AttributeName: finished_at, AttributeType: S}
  KeySchema:
    - {AttributeName: pk, KeyType: HASH}
    - {AttributeName: sk, KeyType: RANGE}
  GlobalSecondaryIndexes:
    - IndexName: VisitsByStore
      KeySchema:
        - {AttributeName: visit_store, KeyType: HASH}
        - {AttributeName: visit_store_sk, KeyType: RANGE}
      Projection:
        ProjectionType: INCLUDE
        NonKeyAttributes: [store_id, visit_time_utc, status, perimeter]
    - IndexName: VisitsByArea
      KeySchema:
        - {AttributeName: visit_area, KeyType: HASH}
        - {AttributeName: visit_area_sk, KeyType: RANGE}
      Projection:
        ProjectionType: INCLUDE
        NonKeyAttributes: [store_id, visit_time_utc, status, perimeter]
    - IndexName: JobsByCreatedAt
      KeySchema:
        - {AttributeName: job_list, KeyType: HASH}
        - {AttributeName: job_list_sk, KeyType: RANGE}
      Projection: {ProjectionType: KEYS_ONLY}
    - IndexName: JobsByStatus
      KeySchema:
        - {AttributeName: status, KeyType: HASH}
        - {AttributeName: created_at, KeyType: RANGE}
      Projection: {ProjectionType: KEYS_ONLY}
    - IndexName: NoticesDue
      KeySchema:
        - {AttributeName: notice_due, KeyType: HASH}
        - {AttributeName: finished_at, KeyType: RANGE}
      Projection: {ProjectionType: KEYS_ONLY}
  TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
  PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
  SSESpecification: {SSEEnabled: true}
"""
)


def old_template(current: dict) -> dict:
    """The current template with f399a74's JobsTable and no stream-triggered function (there was none)."""
    resources = {k: v for k, v in current["Resources"].items() if v.get("Type") != "AWS::Serverless::Function"}
    resources["JobsTable"] = OLD_JOBS_TABLE
    return {**current, "Resources": resources}
