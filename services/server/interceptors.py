"""The one interceptor every tenant RPC goes through.

For each RPC it (1) authenticates the API key from metadata and checks the scope the
contract requires, (2) exposes the caller as ``current_principal`` to the servicer,
(3) turns any DomainError into a google.rpc.Status with details, and an unexpected
exception into a bare INTERNAL (logged, never leaked), and (4) writes one canonical JSON
log line: method, tenant, key, status code, milliseconds.

grpc.aio interceptors cannot see a handler's outcome, so the interceptor wraps the
method handler itself; the wrapper runs in the RPC's own task, which is what makes the
principal ContextVar visible to the servicer.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
import structlog

from services.db.engine import is_transient
from services.errors import (
    DomainError,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from services.server.decoding import decode
from services.server.policy import MethodRule, is_public
from services.server.status import internal_status, to_grpc_status, to_rpc_status
from services.tenancy.principal import Principal, current_principal
from services.tenancy.service import TenancyService

log = structlog.get_logger("rlaas.rpc")

API_KEY_HEADER = "x-api-key"


def api_key_from_metadata(metadata: Any) -> str | None:
    """The API key of a call: ``authorization: Bearer <key>`` or ``x-api-key: <key>``.

    Credentials that disagree (a bearer key of one tenant and an ``x-api-key`` of
    another, or one header twice with different keys) are refused rather than resolved
    by header order: a proxy that adds its own header must not silently decide which
    tenant a call runs as. The same key in both headers is one credential."""
    found: set[str] = set()
    for key, value in metadata or ():
        token = None
        if key == "authorization" and isinstance(value, str):
            scheme, _, rest = value.partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                token = rest.strip()
        elif key == API_KEY_HEADER and isinstance(value, str) and value.strip():
            token = value.strip()
        if token is not None:
            found.add(token)
    if len(found) > 1:
        raise Unauthenticated(
            "the call carries more than one API key (authorization and x-api-key headers "
            "that differ); send one",
            reason="CONFLICTING_CREDENTIALS",
        )
    return found.pop() if found else None


class RpcInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tenancy: TenancyService, rules: Mapping[str, MethodRule]) -> None:
        self._tenancy = tenancy
        self._rules = rules

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return handler
        # Public methods (health, reflection) take no key, but their requests are decoded
        # as safely as any: bad bytes are INVALID_ARGUMENT there too, never UNKNOWN.
        public = is_public(method)
        return _wrap(handler, _Call(self._tenancy, self._rules.get(method), method, public))


class _Call:
    """Per-method behaviour shared by the four handler shapes."""

    def __init__(
        self, tenancy: TenancyService, rule: MethodRule | None, method: str, public: bool = False
    ) -> None:
        self.tenancy = tenancy
        self.rule = rule
        self.method = method
        self.public = public

    async def authorize(self, context: grpc.aio.ServicerContext) -> Principal | None:
        if self.public:
            return None
        if self.rule is None:
            # Fail closed: a method with no rule in the contract is never callable.
            raise PermissionDenied(f"{self.method} has no access rule", reason="NO_ACCESS_RULE")
        token = api_key_from_metadata(context.invocation_metadata())
        principal = await self.tenancy.authenticate(token)
        if self.rule.scope is not None:
            principal.require(self.rule.scope)
        if self.rule.operator_only:
            principal.require_operator()
        return principal

    async def fail(self, context: grpc.aio.ServicerContext, exc: BaseException) -> None:
        if isinstance(exc, NotImplementedError):
            exc = Unimplemented(f"{self.method} is not implemented by this server yet")
        elif is_transient(exc):
            log.warning("rpc_database_unavailable", method=self.method, error=repr(exc))
            exc = Unavailable("the database is unavailable; retry", reason="DATABASE_UNAVAILABLE")
        if isinstance(exc, DomainError):
            status = to_grpc_status(to_rpc_status(exc))
        else:
            log.exception("rpc_internal_error", method=self.method)
            status = to_grpc_status(internal_status())
        await context.abort(status.code, status.details, status.trailing_metadata)

    def finish(
        self,
        context: grpc.aio.ServicerContext,
        started: float,
        principal: Principal | None,
        exc: BaseException | None,
    ) -> None:
        if self.public and exc is None:
            return  # health checks poll all day: only their failures are worth a line
        if isinstance(exc, asyncio.CancelledError):
            code = grpc.StatusCode.CANCELLED.name  # the client went away
        elif isinstance(exc, NotImplementedError):
            code = grpc.StatusCode.UNIMPLEMENTED.name
        elif isinstance(exc, DomainError):
            code = exc.code.name
        elif exc is not None and is_transient(exc):
            code = grpc.StatusCode.UNAVAILABLE.name
        elif exc is not None and not isinstance(exc, grpc.aio.AbortError):
            code = grpc.StatusCode.INTERNAL.name
        else:
            raw = context.code()
            code = raw.name if isinstance(raw, grpc.StatusCode) else "OK"
        fields: dict[str, Any] = {
            "method": self.method,
            "code": code,
            "ms": round((time.perf_counter() - started) * 1000, 3),
            "tenant": principal.tenant_id if principal else None,
            "api_key_id": principal.api_key_id if principal else None,
        }
        if isinstance(exc, DomainError):
            fields["reason"] = exc.reason
        log.info("rpc", **fields)


# Client streams whose servicer answers every message on its own: a message that parses
# but is refused (a NUL, a time out of range) reaches the servicer as a `Refused` and gets
# its own rejected result; the stream goes on. Bytes that do not parse still end the
# stream: nothing in them can be trusted, not even the sequence number to answer with.
PER_MESSAGE_STREAMS = frozenset(
    {
        "/rlaas.telemetry.v1.TelemetryService/IngestEvents",
        "/rlaas.telemetry.v1.TelemetryService/IngestEventBatches",
    }
)


class _Decoder:
    """The method's request deserializer, made safe (see services.server.decoding).

    A single request that does not decode becomes an InvalidArgument *value*: grpc.aio
    deserializes it before the handler runs, where anything raised becomes UNKNOWN, so
    the handler raises it, after authentication. In a client stream, the message that
    does not decode raises the InvalidArgument from the servicer's ``async for``, which
    ends the stream with that status after the results of the messages before it."""

    def __init__(self, deserializer: Callable[[bytes], Any], method: str, stream: bool) -> None:
        self._deserializer = deserializer
        self._method = method
        self._stream = stream
        self._per_message = method in PER_MESSAGE_STREAMS
        self._count = 0  # one decoder per call (handlers are wrapped per call)

    def __call__(self, raw: bytes) -> Any:
        result = decode(self._deserializer, raw, self._method, per_message=self._per_message)
        if not self._stream:
            return result
        self._count += 1
        if isinstance(result, InvalidArgument):
            raise InvalidArgument(
                result.violations,
                message=f"message {self._count} of the stream: {result.message}",
                reason=result.reason,
            )
        return result


def _wrap(handler: grpc.RpcMethodHandler, call: _Call) -> grpc.RpcMethodHandler:
    deserializer = handler.request_deserializer
    if deserializer is not None:
        deserializer = _Decoder(deserializer, call.method, handler.request_streaming)
    if not handler.response_streaming:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            principal: Principal | None = None
            error: BaseException | None = None
            try:
                principal = await call.authorize(context)
                # Each RPC runs in its own task (own Context), so no reset is needed.
                current_principal.set(principal)
                if isinstance(request, InvalidArgument):  # it did not decode
                    raise request
                return await inner(request, context)
            except grpc.aio.AbortError:
                raise
            except asyncio.CancelledError as exc:
                error = exc
                raise
            except Exception as exc:
                error = exc
                await call.fail(context, exc)
            finally:
                call.finish(context, started, principal, error)

        factory = (
            grpc.unary_unary_rpc_method_handler
            if not handler.request_streaming
            else grpc.stream_unary_rpc_method_handler
        )
    else:
        inner = handler.unary_stream or handler.stream_stream

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            principal: Principal | None = None
            error: BaseException | None = None
            try:
                principal = await call.authorize(context)
                # Each RPC runs in its own task (own Context), so no reset is needed.
                current_principal.set(principal)
                if isinstance(request, InvalidArgument):  # it did not decode
                    raise request
                result = inner(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:  # a coroutine that writes with context.write()
                    await result
            except grpc.aio.AbortError:
                raise
            except asyncio.CancelledError as exc:
                error = exc
                raise
            except Exception as exc:
                error = exc
                await call.fail(context, exc)
            finally:
                call.finish(context, started, principal, error)

        factory = (
            grpc.unary_stream_rpc_method_handler
            if not handler.request_streaming
            else grpc.stream_stream_rpc_method_handler
        )
    behaviour = unary if not handler.response_streaming else streaming
    return factory(
        behaviour,
        request_deserializer=deserializer,
        response_serializer=handler.response_serializer,
    )


def principal() -> Principal:
    """The authenticated caller of the current RPC (set by RpcInterceptor)."""
    value = current_principal.get()
    if value is None:
        raise Unauthenticated("no authenticated caller in this context")
    return value
