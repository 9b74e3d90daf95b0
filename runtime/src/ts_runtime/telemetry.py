"""OpenTelemetry tracing set up by hand, honouring the standard OTEL_* variables, and cheap when a
request is not sampled.

Exporter: the SDK reads `OTEL_TRACES_EXPORTER` only in auto-configuration, so it is read here:
`none` (the default when no endpoint is configured), `console`, `otlp` (HTTP/protobuf to
`OTEL_EXPORTER_OTLP_ENDPOINT`). With `none` no SDK provider is installed at all: spans nobody
exports are not built (an incoming `traceparent` is still carried through, as the API's no-op
tracer keeps the caller's span context). `OTEL_SDK_DISABLED=true` does the same.

Sampler: `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` with the standard names and meanings
(`always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`,
`parentbased_traceidratio`; ARG is the ratio, 0 to 1, default 1.0). Unset: `parentbased_always_on`,
the OTel default: a request arriving with a sampled `traceparent` is traced, one with an unsampled
`traceparent` is not, and one without a parent starts a sampled trace. The gateway is where traces
start, so sampling a fraction is set there (`parentbased_traceidratio`), and the API follows its
decision. A value this module does not know, or a ratio that is not a number in [0, 1], is a
ConfigError naming the variable (the SDK would silently fall back to "everything").

Export: spans go out in batches of 64 (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`; the SDK's default is 512),
since the export thread holds the GIL while it encodes a batch (`export_batch_size`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from opentelemetry import context, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .settings import ConfigError, env_bool, env_str

log = logging.getLogger(__name__)
_configured = False
_asyncpg_instrumented = False

DEFAULT_SAMPLER = "parentbased_always_on"
SAMPLERS = ("always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off",
            "parentbased_traceidratio")


def sampler_from_env() -> Sampler:
    """The sampler `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG` ask for; ConfigError if they make no sense."""
    name = (env_str("OTEL_TRACES_SAMPLER", DEFAULT_SAMPLER) or DEFAULT_SAMPLER).strip().lower()
    if name not in SAMPLERS:
        raise ConfigError(f"OTEL_TRACES_SAMPLER={name!r} is not supported; use one of {', '.join(SAMPLERS)}")
    ratio = 1.0
    raw = env_str("OTEL_TRACES_SAMPLER_ARG")
    if name.endswith("traceidratio") and raw is not None and raw.strip():
        try:
            ratio = float(raw)
        except ValueError:
            ratio = float("nan")
        if not 0.0 <= ratio <= 1.0:  # NaN fails both comparisons
            raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG={raw!r} must be a ratio between 0 and 1 (e.g. 0.1) "
                              f"for OTEL_TRACES_SAMPLER={name}")
    root: Sampler = {"always_on": ALWAYS_ON, "always_off": ALWAYS_OFF}.get(
        name.removeprefix("parentbased_")) or TraceIdRatioBased(ratio)
    return ParentBased(root) if name.startswith("parentbased_") else root


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


# The export thread encodes a whole batch while holding the GIL, and the event loop waits
# meanwhile: at the SDK's 512 spans that pause doubled the p99 of POST /ingest under load
# (21 ms → 11 ms at 64; docs/ingest-api.md, "Issue 15"). OTEL_BSP_MAX_EXPORT_BATCH_SIZE still wins.
DEFAULT_EXPORT_BATCH_SIZE = 64


def export_batch_size() -> int:
    """Spans per export: OTEL_BSP_MAX_EXPORT_BATCH_SIZE when set, else 64 (the SDK's is 512)."""
    raw = env_str("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
    if raw is None or not raw.strip():
        # The SDK refuses a batch larger than its queue (OTEL_BSP_MAX_QUEUE_SIZE, 2048 by default).
        queue = env_str("OTEL_BSP_MAX_QUEUE_SIZE")
        return min(DEFAULT_EXPORT_BATCH_SIZE, int(queue)) if queue and queue.strip().isdigit() and int(queue) > 0 \
            else DEFAULT_EXPORT_BATCH_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 1:
        raise ConfigError(f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE={raw!r} must be a whole number of spans, at least 1")
    return size


def setup_tracing(service_name: str) -> trace.TracerProvider:
    """Install the global tracer provider once per process and return it (no-op without an exporter)."""
    global _configured
    sampler = sampler_from_env()  # checked even when nothing exports: a typo fails at start
    batch_size = export_batch_size()
    if _configured or env_bool("OTEL_SDK_DISABLED", False):
        return trace.get_tracer_provider()
    exporter = _exporter_from_env()
    if exporter is None:
        return trace.get_tracer_provider()
    resource = Resource.create({SERVICE_NAME: env_str("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource, sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=batch_size))
    trace.set_tracer_provider(provider)
    _configured = True
    return provider


def instrument_asyncpg() -> None:
    """Spans for the SQL statements of sampled requests (once per process).

    opentelemetry-instrumentation-asyncpg starts a span for every statement, which for an
    unsampled request is a non-recording span nobody sees, built and ended for nothing; here a
    statement outside a recording span goes straight to asyncpg.
    """
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    class SampledOnly(AsyncPGInstrumentor):
        async def _do_execute(self, func, instance, args, kwargs):  # type: ignore[no-untyped-def]
            if not trace.get_current_span().is_recording():
                return await func(*args, **kwargs)
            return await super()._do_execute(func, instance, args, kwargs)

        async def _do_cursor_execute(self, func, instance, args, kwargs):  # type: ignore[no-untyped-def]
            if not trace.get_current_span().is_recording():
                return await func(*args, **kwargs)
            return await super()._do_cursor_execute(func, instance, args, kwargs)

        async def _do_prepared_execute(self, func, instance, args, kwargs):  # type: ignore[no-untyped-def]
            if not trace.get_current_span().is_recording():
                return await func(*args, **kwargs)
            return await super()._do_prepared_execute(func, instance, args, kwargs)

    global _asyncpg_instrumented
    if _asyncpg_instrumented:  # a class made here is new on every call: remember it was done
        return
    instrumentor = SampledOnly()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    _asyncpg_instrumented = True


_propagator = TraceContextTextMapPropagator()
_TRACE_HEADERS = (b"traceparent", b"tracestate")


class ServerSpans:
    """One SERVER span per HTTP request, continuing an incoming W3C `traceparent`, named
    `METHOD /route/{template}`: an ASGI middleware (Litestar `middleware=[...]`), and `start` /
    `finish` for a handler that serves a route without the framework (the ingest API's hot path).

    What opentelemetry-instrumentation-asgi does, without its per-request work when the request
    is not sampled (attribute collection, a wrapped `send` per message, duration histograms): an
    unsampled request only attaches the non-recording span, so that nothing under it (SQL) starts
    a trace of its own.
    """

    def __init__(self, exclude: Iterable[str] = ()) -> None:
        self.excluded = frozenset(exclude)
        self.tracer = trace.get_tracer("ts_runtime.http")

    def start(self, scope, route: str) -> tuple[trace.Span, object]:  # type: ignore[no-untyped-def]
        """The request's span, attached as the current one; hand both to `finish`."""
        carrier = {name.decode(): value.decode("latin-1") for name, value in scope["headers"]
                   if name in _TRACE_HEADERS}
        parent = _propagator.extract(carrier) if carrier else None
        method = scope["method"]
        span = self.tracer.start_span(f"{method} {route}", context=parent, kind=trace.SpanKind.SERVER)
        token = context.attach(trace.set_span_in_context(span, parent))
        if span.is_recording():
            span.set_attributes({"http.request.method": method, "http.route": route,
                                 "url.path": scope["path"], "url.scheme": scope.get("scheme", "http")})
        return span, token

    @staticmethod
    def answered(span: trace.Span, status: int) -> None:
        """Record the response status on a sampled span (5xx marks it an error)."""
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(trace.StatusCode.ERROR)

    @staticmethod
    def finish(span: trace.Span, token: object, error: BaseException | None = None) -> None:
        if error is not None and span.is_recording():
            span.record_exception(error)
            span.set_status(trace.StatusCode.ERROR)
        span.end()
        context.detach(token)  # type: ignore[arg-type]

    def __call__(self, app):  # type: ignore[no-untyped-def]
        async def traced(scope, receive, send):  # type: ignore[no-untyped-def]
            if scope["type"] != "http" or scope["path"] in self.excluded:
                await app(scope, receive, send)
                return
            span, token = self.start(scope, scope.get("path_template") or scope["path"])
            error = None
            try:
                if not span.is_recording():
                    await app(scope, receive, send)
                    return

                async def send_status(message):  # type: ignore[no-untyped-def]
                    if message["type"] == "http.response.start":
                        self.answered(span, message["status"])
                    await send(message)

                await app(scope, receive, send_status)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self.finish(span, token, error)

        return traced


def server_spans(exclude: Iterable[str] = ()) -> ServerSpans:
    """The request spans of an app (the middleware factory; see ServerSpans)."""
    return ServerSpans(exclude)
