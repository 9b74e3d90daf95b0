"""A stand-in OTLP/HTTP trace collector for the benchmarks: accepts `POST /v1/traces`
(protobuf, as opentelemetry-exporter-otlp-proto-http sends it), counts the spans, answers 200.

Run as `python bench/otlp_sink.py PORT`; on SIGTERM it prints `OTLP_SINK <requests> <spans> <bytes>`.
It decodes every export (so the API's exporter does its real work: encode, POST, wait for the
answer), and runs in its own process so its CPU is not the API's.
"""

from __future__ import annotations

import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

totals = {"requests": 0, "spans": 0, "bytes": 0}
_ANSWER = ExportTraceServiceResponse().SerializeToString()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        request = ExportTraceServiceRequest.FromString(body)
        totals["requests"] += 1
        totals["bytes"] += len(body)
        totals["spans"] += sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(_ANSWER)))
        self.end_headers()
        self.wfile.write(_ANSWER)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)

    def stop(*_: object) -> None:
        print(f"OTLP_SINK {totals['requests']} {totals['spans']} {totals['bytes']}", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("otlp sink listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
