"""A local stand-in for the AWS stack in template.yaml (no Docker): moto for DynamoDB/S3,
a small SQS of our own, API Gateway proxy events and the SQS event source mapping."""
