"""The bridge's HTTP server (aiohttp): one catch-all handler that routes like
grpc-gateway's ServeMux, transcodes, calls the gRPC server and writes JSON back.

Choices where grpc-gateway leaves room:
- A path served only under other methods answers **405** with ``Allow`` (grpc-gateway's
  default answers 501 "Method Not Allowed"); an unknown path answers 404. Both bodies are
  ``google.rpc.Status`` JSON (codes UNIMPLEMENTED and NOT_FOUND, as grpc-gateway sets).
- Server streams are newline-delimited JSON (``application/x-ndjson``): one
  ``{"result": <message>}`` per message, and ``{"error": <Status>}`` when the stream fails.
  A failure before the first message also sets the HTTP status from its code.
- Client and bidi streams take newline-delimited JSON too (one request per line). A line
  that does not parse stops the request stream there: what went before is processed and
  answered, then an ``{"error": ...}`` line names the bad line.
- Limits: a streamed body may hold at most ``max_stream_body_bytes``. A Content-Length
  above it answers **413** before anything is read (nothing is processed). A chunked body
  that crosses it stops at the line that crosses it, exactly like a bad line: the lines
  before are processed and answered (an acknowledged event is stored), then an
  ``{"error": ...}`` line (RESOURCE_EXHAUSTED) ends the response - or, when nothing was
  answered yet, the response is that error under HTTP 413. The client resends from its
  first unacknowledged line in a new request. A body that pauses longer than
  ``body_timeout_s`` ends the same way (DEADLINE_EXCEEDED, HTTP 408), and so does a unary
  body that does not arrive within it. Idle connections and slow request headers are
  closed by aiohttp's keep-alive timer (``idle_timeout_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog
from aiohttp import web
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from services.rest import openapi
from services.rest.errors import (
    BadInput,
    http_status,
    routing_status,
    status_from_rpc_error,
    status_json,
)
from services.rest.proxy import (
    Invoker,
    ServerStatus,
    forward_metadata,
    response_headers,
    timeout_from,
)
from services.rest.routes import Matched, Route, Router, routes_for
from services.rest.transcode import body_json, build_request, dumps, parse_json, response_json

log = structlog.get_logger("rlaas.rest")

OPENAPI_PATH = "/openapi.json"
JSON = "application/json"
NDJSON = openapi.NDJSON
# gRPC's default largest message; a unary body bigger than this could not be sent anyway.
MAX_BODY_BYTES = 4 * 1024 * 1024
# Defaults of the limits below; `rlaas serve` passes its RLAAS_REST_* settings.
MAX_STREAM_BODY_BYTES = 64 * 1024 * 1024
BODY_TIMEOUT_S = 30.0
IDLE_TIMEOUT_S = 30.0


class BodyLimit(Exception):
    """The bridge stops reading a request body (too large, or too slow): a google.rpc
    Status and the HTTP status to answer with when nothing was answered yet."""

    def __init__(self, code: int, message: str, http: int) -> None:
        super().__init__(message)
        self.status = routing_status(code, message)
        self.http = http


def _too_large(limit: int) -> BodyLimit:
    return BodyLimit(
        code_pb2.RESOURCE_EXHAUSTED,
        f"the request body is larger than {limit} bytes; send the rest in another request",
        413,
    )


def _too_slow(seconds: float) -> BodyLimit:
    return BodyLimit(code_pb2.DEADLINE_EXCEEDED, f"no request body data for {seconds:g} s", 408)


# A failure found while reading a streamed body: (status, HTTP status if none was sent).
LateError = tuple[status_pb2.Status, int | None]


def _json_response(status: int, value: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=dumps(value), content_type=JSON, headers=headers)


def _status_response(
    status: status_pb2.Status, http: int | None = None, **headers: str
) -> web.Response:
    return _json_response(http or http_status(status.code), status_json(status), headers or None)


@dataclass
class Bridge:
    channel: grpc.aio.Channel
    router: Router
    spec: bytes
    invokers: dict[str, Invoker] = field(default_factory=dict)
    max_stream_body_bytes: int = MAX_STREAM_BODY_BYTES
    body_timeout_s: float = BODY_TIMEOUT_S

    @classmethod
    def create(
        cls,
        services: Sequence[ServiceDescriptor],
        channel: grpc.aio.Channel,
        spec: bytes,
        *,
        max_stream_body_bytes: int = MAX_STREAM_BODY_BYTES,
        body_timeout_s: float = BODY_TIMEOUT_S,
    ) -> Bridge:
        routes = routes_for(services)
        invokers = {r.rpc_path: Invoker(channel, r.method) for r in routes}
        return cls(channel, Router(routes), spec, invokers, max_stream_body_bytes, body_timeout_s)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        # Every path, newlines included (an escaped %0A is decoded before routing).
        app.router.add_route("*", "/{tail:[\\s\\S]*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        raw_path = request.rel_url.raw_path
        route_name = None
        response: web.StreamResponse | None = None
        try:
            if raw_path == OPENAPI_PATH and request.method in ("GET", "HEAD"):
                response = web.Response(body=self.spec, content_type=JSON)
                return response
            matched = self.router.match(request.method, raw_path)
            if not isinstance(matched, Matched):
                if matched.allowed:
                    response = _status_response(
                        routing_status(code_pb2.UNIMPLEMENTED, "Method Not Allowed"),
                        Allow=", ".join(matched.allowed),
                    )
                    response.set_status(405)
                else:
                    response = _status_response(routing_status(code_pb2.NOT_FOUND, "Not Found"))
                return response
            route_name = matched.route.operation_id
            response = await self._call(request, matched)
            return response
        except BadInput as err:
            response = _status_response(err.status())
            return response
        except BodyLimit as err:
            response = _status_response(err.status, err.http)
            return response
        except web.HTTPRequestEntityTooLarge:
            too_big = routing_status(
                code_pb2.RESOURCE_EXHAUSTED, f"the body is larger than {MAX_BODY_BYTES} bytes"
            )
            response = _status_response(too_big)
            response.set_status(413)
            return response
        finally:
            log.info(
                "rest",
                http_method=request.method,
                path=raw_path,
                route=route_name,
                status=response.status if response is not None else None,
                ms=round((time.perf_counter() - started) * 1000, 3),
            )

    async def _call(self, request: web.Request, matched: Matched) -> web.StreamResponse:
        route = matched.route
        invoker = self.invokers[route.rpc_path]
        metadata = forward_metadata(
            request.headers, remote=request.remote, host=request.headers.get("Host")
        )
        timeout = timeout_from(request.headers)
        if route.client_streaming:
            return await self._client_stream(request, matched, invoker, metadata, timeout)
        body = b""
        if route.body:
            try:
                async with asyncio.timeout(self.body_timeout_s):
                    body = await request.read()
            except TimeoutError:
                raise _too_slow(self.body_timeout_s) from None
        message = build_request(
            route, invoker.new_request(), matched.path_params, request.query.items(), body
        )
        call = invoker.call(message, metadata=metadata, timeout=timeout)
        if route.server_streaming:
            return await self._stream_out(request, route, call)
        try:
            reply = await call
            headers = response_headers(await call.initial_metadata())
        except grpc.aio.AioRpcError as err:
            return _status_response(status_from_rpc_error(err))
        return _json_response(200, response_json(route, reply), headers)

    async def _stream_out(
        self,
        request: web.Request,
        route: Route,
        call: Any,
        late_error: list[LateError] | None = None,
        server_status: ServerStatus | None = None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_type = NDJSON
        try:
            try:
                async for reply in call:
                    if not response.prepared:
                        response.headers.update(response_headers(await call.initial_metadata()))
                        await response.prepare(request)
                    await response.write(dumps({"result": response_json(route, reply)}) + b"\n")
                failure, failure_http = late_error[0] if late_error else (None, None)
            except grpc.aio.AioRpcError as err:
                if server_status is not None:
                    err = server_status.of(err)
                failure, failure_http = status_from_rpc_error(err), None
            if failure is not None:
                if not response.prepared:
                    response.set_status(failure_http or http_status(failure.code))
                    await response.prepare(request)
                await response.write(dumps({"error": status_json(failure)}) + b"\n")
            elif not response.prepared:
                await response.prepare(request)
            await response.write_eof()
        finally:
            call.cancel()  # the HTTP client went away mid-stream: stop the RPC too
        return response

    async def _client_stream(
        self,
        request: web.Request,
        matched: Matched,
        invoker: Invoker,
        metadata: list[tuple[str, str | bytes]],
        deadline_s: float | None,
    ) -> web.StreamResponse:
        route = matched.route
        if (request.content_length or 0) > self.max_stream_body_bytes:
            # Declared too large: refused before a byte is read, so nothing is processed.
            raise _too_large(self.max_stream_body_bytes)
        bad_line: list[LateError] = []
        # The body is read here, in the handler's task, and handed over through a small
        # queue: gRPC consumes the request iterator in a task of its own, and the body
        # must have one reader only (aiohttp drains what is left when the handler ends).
        queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize=64)

        async def read_body() -> None:
            number = 0
            try:
                async for line in _lines(
                    request,
                    total=self.max_stream_body_bytes,
                    idle_timeout_s=self.body_timeout_s,
                ):
                    number += 1
                    if not line.strip():
                        continue
                    message = invoker.new_request()
                    try:
                        body_json(route, parse_json(line), message)
                        # Path variables apply to every message of the stream.
                        build_request(route, message, matched.path_params, (), b"")
                    except BadInput as err:
                        where = f"line {number}" + (f": {err.field}" if err.field else "")
                        raise BadInput(where, err.description) from None
                    await queue.put(message)
            except BadInput as err:
                bad_line.append((err.status(), None))
            except BodyLimit as err:
                # Like a bad line: the lines before it go on and are answered.
                bad_line.append((err.status, err.http))
            except asyncio.CancelledError:
                # The handler is done and nobody reads the queue any more: no end marker
                # (a put on a full queue would never return).
                raise
            except BaseException:
                # The connection broke mid-body: the lines read so far end the stream,
                # so the call finishes instead of waiting for lines that never come.
                await queue.put(None)
                raise
            await queue.put(None)

        async def messages() -> AsyncIterator[Message]:
            while (message := await queue.get()) is not None:
                yield message

        reader = asyncio.create_task(read_body())
        try:
            call = invoker.call(messages(), metadata=metadata, timeout=deadline_s)
            server_status = ServerStatus(call)
            if route.server_streaming:
                return await self._stream_out(request, route, call, bad_line, server_status)
            try:
                reply = await call
            except grpc.aio.AioRpcError as err:
                return _status_response(status_from_rpc_error(server_status.of(err)))
            if bad_line:
                return _status_response(*bad_line[0])
            return _json_response(200, response_json(route, reply))
        finally:
            # The server may answer before the body ends (e.g. a bad key): stop reading.
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def _lines(
    request: web.Request,
    limit: int = MAX_BODY_BYTES,
    *,
    total: int = MAX_STREAM_BODY_BYTES,
    idle_timeout_s: float = BODY_TIMEOUT_S,
) -> AsyncIterator[bytes]:
    """The body's lines as they arrive (no line may exceed ``limit``). Only whole lines
    within the first ``total`` bytes are yielded: the line that crosses it raises
    BodyLimit instead, and so does a pause of more than ``idle_timeout_s``."""
    pending = b""
    consumed = 0  # bytes of the lines already yielded, newlines included
    while True:
        try:
            async with asyncio.timeout(idle_timeout_s):
                chunk = await request.content.readany()
        except TimeoutError:
            raise _too_slow(idle_timeout_s) from None
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            consumed += len(line) + 1
            if consumed > total:
                raise _too_large(total)
            yield line
        if consumed + len(pending) > total:
            raise _too_large(total)
        if len(pending) > limit:
            raise BadInput("", f"a line longer than {limit} bytes")
    if pending:
        yield pending


@dataclass
class RunningBridge:
    runner: web.AppRunner
    channel: grpc.aio.Channel
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        # Stops listening, then waits up to the runner's shutdown timeout for requests in
        # flight (their RPCs still run on the gRPC server, which stops after this).
        await self.runner.cleanup()
        with contextlib.suppress(Exception):
            await self.channel.close()


def served_spec(services: Sequence[ServiceDescriptor]) -> bytes:
    """The generated OpenAPI file (with the proto comments) when it exists; otherwise the
    same document built from the runtime descriptors (which carry no comments)."""
    try:
        return openapi.OPENAPI_FILE.read_bytes()
    except FileNotFoundError:
        return openapi.render(openapi.build(services)).encode()


async def start_bridge(
    services: Sequence[ServiceDescriptor],
    grpc_target: str,
    *,
    host: str,
    port: int,
    shutdown_timeout: float = 10.0,
    max_stream_body_bytes: int = MAX_STREAM_BODY_BYTES,
    body_timeout_s: float = BODY_TIMEOUT_S,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
) -> RunningBridge:
    channel = grpc.aio.insecure_channel(grpc_target)
    bridge = Bridge.create(
        services,
        channel,
        served_spec(services),
        max_stream_body_bytes=max_stream_body_bytes,
        body_timeout_s=body_timeout_s,
    )
    # access_log=None: the bridge writes its own line (never with headers: keys live there).
    # keepalive_timeout: aiohttp starts it when a connection opens and again after each
    # response, and closes the connection if no complete request arrived by then: the
    # limit on idle connections and on request lines and headers sent a byte at a time.
    runner = web.AppRunner(
        bridge.app(),
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=idle_timeout_s,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for address in runner.addresses:
        if isinstance(address, tuple):
            bound = int(address[1])
            break
    log.info("rest_bridge_started", port=bound, grpc_target=grpc_target)
    return RunningBridge(runner, channel, bound)
