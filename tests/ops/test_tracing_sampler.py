"""The sampler read from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (ts_runtime.telemetry)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, TraceIdRatioBased

from ts_runtime.settings import ConfigError
from ts_runtime.telemetry import sampler_from_env

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def _parent(sampled: bool):
    span = trace.NonRecordingSpan(trace.SpanContext(
        TRACE_ID, 0x00F067AA0BA902B7, is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else trace.TraceFlags.DEFAULT)))
    return trace.set_span_in_context(span)


def _decide(sampler, parent=None, trace_id: int = TRACE_ID) -> bool:
    return sampler.should_sample(parent, trace_id, "POST /ingest").decision == Decision.RECORD_AND_SAMPLE


def test_default_follows_the_parent_and_samples_roots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    sampler = sampler_from_env()
    assert isinstance(sampler, ParentBased)
    assert _decide(sampler, _parent(True)) is True
    assert _decide(sampler, _parent(False)) is False
    assert _decide(sampler) is True  # no parent: parentbased_always_on, the OTel default


def test_parentbased_ratio_keeps_sampled_parents_and_samples_a_share_of_roots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", " ParentBased_TraceIdRatio ")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    sampler = sampler_from_env()
    assert _decide(sampler, _parent(True)) is True  # whatever the ratio
    assert _decide(sampler, _parent(False)) is False
    roots = sum(_decide(sampler, None, trace_id) for trace_id in range(1, 2**64, 2**64 // 4000))
    assert 800 <= roots <= 1200  # a quarter of the trace ids


@pytest.mark.parametrize(("name", "sampled_root", "follows_parent"), [
    ("always_on", True, False), ("always_off", False, False),
    ("parentbased_always_off", False, True), ("parentbased_always_on", True, True),
])
def test_each_named_sampler(monkeypatch: pytest.MonkeyPatch, name: str, sampled_root: bool, follows_parent: bool) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", name)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    sampler = sampler_from_env()
    assert _decide(sampler) is sampled_root
    if follows_parent:
        assert _decide(sampler, _parent(True)) is True and _decide(sampler, _parent(False)) is False


@pytest.mark.parametrize(("name", "arg", "message"), [
    ("jaeger_remote", "", "is not supported"),
    ("", "", None),  # empty: the default
    ("traceidratio", "abc", "must be a ratio between 0 and 1"),
    ("traceidratio", "-0.1", "must be a ratio between 0 and 1"),
    ("parentbased_traceidratio", "nan", "must be a ratio between 0 and 1"),
    ("parentbased_traceidratio", "2", "must be a ratio between 0 and 1"),
    ("parentbased_traceidratio", "", None),  # empty ARG: the standard's 1.0
])
def test_bad_values_are_refused_by_name(monkeypatch: pytest.MonkeyPatch, name: str, arg: str, message: str | None) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", name)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    if message is None:
        assert _decide(sampler_from_env()) is True
        return
    with pytest.raises(ConfigError, match=message) as raised:
        sampler_from_env()
    assert "OTEL_TRACES_SAMPLER" in str(raised.value)


@given(st.floats(min_value=0.0, max_value=1.0, allow_nan=False))
def test_any_ratio_in_range_is_taken(ratio: float) -> None:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
        env.setenv("OTEL_TRACES_SAMPLER_ARG", repr(ratio))
        sampler = sampler_from_env()
    assert isinstance(sampler, TraceIdRatioBased) and sampler.rate == ratio


# -- spans per export --------------------------------------------------------------------------

def test_exports_go_in_batches_of_64_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    from ts_runtime.telemetry import export_batch_size

    monkeypatch.delenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", raising=False)
    monkeypatch.delenv("OTEL_BSP_MAX_QUEUE_SIZE", raising=False)
    assert export_batch_size() == 64
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "16")
    assert export_batch_size() == 16  # never more than the SDK's queue holds
    processor = BatchSpanProcessor(ConsoleSpanExporter(), max_export_batch_size=export_batch_size())
    processor.shutdown()  # the SDK accepted it
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", " 512 ")
    assert export_batch_size() == 512


@pytest.mark.parametrize("raw", ["0", "-3", "lots", "1.5"])
def test_a_nonsense_batch_size_is_named(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    from ts_runtime.telemetry import export_batch_size

    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", raw)
    with pytest.raises(ConfigError, match="OTEL_BSP_MAX_EXPORT_BATCH_SIZE"):
        export_batch_size()
