"""Shared code of the Retail Pulse functions (deployed as a Lambda layer).

Layering: handlers (functions/*/app.py) parse events and call one function of
`logic`; `logic` holds the rules and talks to storage only through the Protocols
in `ports`; `dynamodb_jobs`, `sqs_queue` and `store_master_source` are the only
modules that touch boto3.
"""
