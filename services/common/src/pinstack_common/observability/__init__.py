"""Logs, metrics and traces: structlog JSON logging, the platform's Prometheus metrics and their
server, OpenTelemetry tracing."""
