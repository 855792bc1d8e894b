"""Health and reflection take no key, yet their requests are decoded as safely as every
other RPC's: bytes that are not a valid message are INVALID_ARGUMENT naming the field,
never UNKNOWN with a Python class name, and a good request still answers."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from tests.helpers import rich_error

pytestmark = pytest.mark.integration


def _identity(raw: bytes) -> bytes:
    return raw


def _bad_utf8(message: bytes, text: bytes) -> bytes:
    return message.replace(text, text[:2] + b"\xff" + text[3:])


async def test_health_check_refuses_bad_bytes_and_still_answers(
    channel: grpc.aio.Channel,
) -> None:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=_identity,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    good = health_pb2.HealthCheckRequest(service="Qzbroken").SerializeToString()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await check(_bad_utf8(good, b"Qzbroken"))
    error = rich_error(info.value)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_UTF8")
    assert [f for f, _ in error.field_violations] == ["service"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await check(health_pb2.HealthCheckRequest(service="nul\x00").SerializeToString())
    assert rich_error(info.value).reason == "NUL_CHARACTER"
    answer = await check(health_pb2.HealthCheckRequest().SerializeToString())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_refuses_bad_bytes(channel: grpc.aio.Channel) -> None:
    info_stream = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=_identity,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    good = reflection_pb2.ServerReflectionRequest(file_containing_symbol="Qzbroken")
    call = info_stream(iter([_bad_utf8(good.SerializeToString(), b"Qzbroken")]))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    error = rich_error(info.value)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_UTF8")
    listed = [
        r
        async for r in info_stream(
            iter([reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()])
        )
    ]
    names = {s.name for s in listed[0].list_services_response.service}
    assert "rlaas.telemetry.v1.TelemetryService" in names
