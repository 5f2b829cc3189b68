"""What tests, the local stack, tools and benchmarks share, none of it deployed: the template model
(`template`), Lambda's context and function loading (`lambda_runtime`), template-driven API routing
(`routing`) and HTTP servers of generated images (`images`)."""
