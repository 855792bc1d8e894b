"""The gRPC side of the bridge: generic calls over a real channel, and the metadata an
HTTP request carries into them.

Like grpc-gateway, the bridge is a client of the gRPC server (loopback to its own port),
so the server's interceptors (API key, scope, tenancy, validation, the canonical log
line) see a REST call exactly as they see any other call. Calls are made with
``channel.unary_unary(path, ...)`` etc. from the method descriptors and the message
classes of the descriptor pool; there are no generated stubs in the loop.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Coroutine, Mapping
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from services.rest.errors import BadInput

# Headers passed through under their own name (the server reads both: see
# services.server.interceptors.api_key_from_metadata). Never logged.
PASS_THROUGH = ("authorization", "x-api-key")
METADATA_PREFIX = "grpc-metadata-"
_VALID_KEY = re.compile(r"^[0-9a-z_.\-]+$")
_TIMEOUT = re.compile(r"^(?P<n>[0-9]{1,8})(?P<unit>[HMSmun])$")
_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def _ascii_value(key: str, value: str) -> str:
    if not all(" " <= ch <= "~" for ch in value):
        raise BadInput(f"header {key}", "metadata values must be printable ASCII")
    return value


def forward_metadata(
    headers: Mapping[str, str], *, remote: str | None = None, host: str | None = None
) -> list[tuple[str, str | bytes]]:
    """grpc-gateway's incoming header matcher: ``authorization`` as is (and ``x-api-key``,
    the server's other key header), ``Grpc-Metadata-<key>`` as ``<key>`` (``-bin`` keys
    base64-decoded), plus ``x-forwarded-for`` / ``x-forwarded-host``."""
    out: list[tuple[str, str | bytes]] = []
    for name, value in headers.items():
        key = name.lower()
        if key in PASS_THROUGH:
            out.append((key, _ascii_value(key, value)))
        elif key.startswith(METADATA_PREFIX):
            md_key = key[len(METADATA_PREFIX) :]
            if not _VALID_KEY.match(md_key) or md_key.startswith("grpc-"):
                raise BadInput(f"header {name}", "not a valid gRPC metadata key")
            if md_key.endswith("-bin"):
                try:
                    out.append((md_key, base64.b64decode(value, validate=True)))
                except (binascii.Error, ValueError):
                    raise BadInput(f"header {name}", "a -bin value must be base64") from None
            else:
                out.append((md_key, _ascii_value(name, value)))
    forwarded = headers.get("x-forwarded-for")
    if remote:
        out.append(("x-forwarded-for", f"{forwarded}, {remote}" if forwarded else remote))
    if host:
        out.append(("x-forwarded-host", _ascii_value("host", host)))
    return out


def timeout_from(headers: Mapping[str, str]) -> float | None:
    """``Grpc-Timeout`` (``100m``, ``5S``: the gRPC wire format), as grpc-gateway reads it."""
    value = headers.get("grpc-timeout")
    if value is None:
        return None
    found = _TIMEOUT.match(value.strip())
    if found is None:
        raise BadInput("header Grpc-Timeout", "expected e.g. 500m or 10S (gRPC timeout format)")
    return int(found.group("n")) * _UNITS[found.group("unit")]


def response_headers(metadata: Any) -> dict[str, str]:
    """The server's header metadata as ``Grpc-Metadata-<key>`` (grpc-gateway's default)."""
    out = {}
    for key, value in metadata or ():
        if isinstance(value, str) and not key.startswith(":"):
            out[f"Grpc-Metadata-{key}"] = value
    return out


class Invoker:
    """One RPC as a generic multi-callable on the channel."""

    def __init__(self, channel: grpc.aio.Channel, method: MethodDescriptor) -> None:
        self.request_class: type[Message] = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        path = f"/{method.containing_service.full_name}/{method.name}"
        kind = {
            (False, False): channel.unary_unary,
            (False, True): channel.unary_stream,
            (True, False): channel.stream_unary,
            (True, True): channel.stream_stream,
        }[(bool(method.client_streaming), bool(method.server_streaming))]
        self.call: Any = kind(
            path,
            request_serializer=self.request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )

    def new_request(self) -> Message:
        return self.request_class()


def _settled(accessor: Coroutine[Any, Any, Any]) -> Any:
    """The value of a finished call's accessor (``code()``, ``details()``...), read without
    awaiting: on a finished call they return at once. None if one would have to wait."""
    try:
        accessor.send(None)
    except StopIteration as done:
        return done.value
    finally:
        accessor.close()
    return None


class ServerStatus:
    """The status a client-streaming call was first finished with: the server's.

    grpcio's aio client (1.85) has a race that this works around, since no option of the
    library avoids it: when the server ends a call (a refused key, a bad batch) while the
    bridge is still writing request lines, the failed write replaces the server's status
    with INTERNAL "Internal error from Core" (grpc/grpc#36066), so the HTTP caller got a
    500 where the server said 401 or 400. The call's done callbacks run when its status
    is first set, which is the server's; this keeps that one.
    """

    def __init__(self, call: grpc.aio.Call) -> None:
        self.error: grpc.aio.AioRpcError | None = None
        call.add_done_callback(self._record)

    def _record(self, call: grpc.aio.Call) -> None:
        code = _settled(call.code())
        if self.error is not None or code in (None, grpc.StatusCode.OK):
            return
        self.error = grpc.aio.AioRpcError(
            code,
            _settled(call.initial_metadata()) or grpc.aio.Metadata(),
            _settled(call.trailing_metadata()) or grpc.aio.Metadata(),
            _settled(call.details()),
        )

    def of(self, err: grpc.aio.AioRpcError) -> grpc.aio.AioRpcError:
        """The server's error where the client replaced it, else ``err``."""
        return self.error if self.error is not None else err
