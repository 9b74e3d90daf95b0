"""OpenTelemetry tracer provider set up by hand, honouring the standard OTEL_* variables.

The SDK reads `OTEL_TRACES_EXPORTER` only in auto-configuration, so it is read here:
`none` (the default when no endpoint is configured) records spans without exporting them,
`console` prints them, `otlp` sends them to `OTEL_EXPORTER_OTLP_ENDPOINT` over HTTP/protobuf.
`OTEL_SDK_DISABLED=true` leaves the no-op provider in place.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from .settings import env_bool, env_str

log = logging.getLogger(__name__)
_configured = False


def _exporter_from_env() -> SpanExporter | None:
    default = "otlp" if env_str("OTEL_EXPORTER_OTLP_ENDPOINT") or env_str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") else "none"
    name = (env_str("OTEL_TRACES_EXPORTER", default) or "none").lower()
    if name == "none":
        return None
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    log.warning("unknown OTEL_TRACES_EXPORTER %r; traces are not exported", name)
    return None


def setup_tracing(service_name: str) -> trace.TracerProvider:
    """Install the global tracer provider once per process and return it."""
    global _configured
    if _configured or env_bool("OTEL_SDK_DISABLED", False):
        return trace.get_tracer_provider()
    resource = Resource.create({SERVICE_NAME: env_str("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    exporter = _exporter_from_env()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured = True
    return provider


def instrument_asyncpg() -> None:
    """Spans for every SQL statement sent through asyncpg (once per process)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
