"""What tests, the local stack, tools and benchmarks share, none of it deployed: the template model
(`template`), Lambda's context and function loading (`lambda_runtime`), template-driven API routing
(`routing`), HTTP servers of generated images (`images`), and the DynamoDB stream event source
mapping (`streams`, its filters in `event_filter`, a stack's stream sources in `stream_sources`)."""
