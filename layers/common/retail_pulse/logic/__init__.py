"""Business rules. Nothing here touches boto3 or event shapes."""
