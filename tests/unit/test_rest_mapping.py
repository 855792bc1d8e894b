"""The REST bridge's routing and transcoding, on the real descriptors (and a small test
contract for what the RLaaS protos do not use: additional_bindings, nested and
multi-segment path variables, a named body with response_body)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    message_factory,
    timestamp_pb2,
)
from google.protobuf.descriptor import ServiceDescriptor
from google.rpc import code_pb2
from openapi_spec_validator import validate

from rlaas.inference.v1 import inference_pb2
from rlaas.registry.v1 import registry_pb2
from rlaas.retrieval.v1 import retrieval_pb2
from rlaas.telemetry.v1 import telemetry_pb2
from rlaas.training.v1 import training_pb2
from services.rest import openapi
from services.rest.errors import HTTP_STATUS, BadInput, http_status
from services.rest.routes import Matched, NotMatched, Route, RouteError, Router, routes_for
from services.rest.template import TemplateError, parse
from services.rest.transcode import build_request, response_json

pytestmark = pytest.mark.unit

SERVICES: list[ServiceDescriptor] = [
    m.DESCRIPTOR.services_by_name[name]
    for m, name in (
        (telemetry_pb2, "TelemetryService"),
        (inference_pb2, "InferenceService"),
        (registry_pb2, "RegistryService"),
        (training_pb2, "TrainingService"),
        (retrieval_pb2, "RetrievalService"),
    )
]
ROUTES = routes_for(SERVICES)
ROUTER = Router(ROUTES)


def route_of(method: str) -> Route:
    return next(r for r in ROUTES if r.method.name == method)


def request_for(
    method: str, params: dict[str, str], query: Sequence[tuple[str, str]] = (), body: Any = None
) -> Any:
    route = route_of(method)
    message = message_factory.GetMessageClass(route.method.input_type)()
    raw = b"" if body is None else json.dumps(body).encode()
    return build_request(route, message, params, query, raw)


# ---- templates -------------------------------------------------------------------


def test_template_grammar() -> None:
    t = parse("/v1/skills/{skill}:infer")
    assert t.verb == "infer" and [v.field_path for v in t.variables] == ["skill"]
    assert t.match("/v1/skills/support%20email:infer") == {"skill": "support email"}
    assert t.match("/v1/skills/a/b:infer") is None
    assert t.match("/v1/skills/x") is None
    # An escaped slash is part of a single-segment value, never a separator.
    assert t.match("/v1/skills/a%2Fb:infer") == {"skill": "a/b"}

    nested = parse("/v1/{shelf.name=shelves/*}/books/**")
    assert nested.match("/v1/shelves/s1/books/a/b/c") == {"shelf.name": "shelves/s1"}
    assert nested.openapi_path() == "/v1/{shelf.name}/books/**"
    for bad in ("v1/x", "/v1/{x", "/v1/{1x}", "/v1/**/**", "/v1/x:"):
        with pytest.raises(TemplateError):
            parse(bad)


# ---- routes from the real contract -------------------------------------------------


def test_every_rpc_has_a_route_from_its_annotation() -> None:
    methods = {m.full_name for s in SERVICES for m in s.methods}
    assert {r.method.full_name for r in ROUTES} == methods
    for route in ROUTES:
        rule = route.method.GetOptions().Extensions[annotations_pb2.http]
        declared = getattr(rule, rule.WhichOneof("pattern"))
        assert route.template.text == declared and route.body == rule.body
    assert len({r.operation_id for r in ROUTES}) == len(ROUTES)


def test_router_picks_the_right_rpc_and_tells_404_from_405() -> None:
    found = ROUTER.match("POST", "/v1/skills/support_email:infer")
    assert isinstance(found, Matched) and found.route.method.name == "Infer"
    found = ROUTER.match("GET", "/v1/policies:diff")
    assert isinstance(found, Matched) and found.route.method.name == "DiffPolicies"
    found = ROUTER.match("GET", "/v1/policies/support_email@v2")
    assert isinstance(found, Matched) and found.path_params == {"policy_id": "support_email@v2"}
    assert ROUTER.match("DELETE", "/v1/skills/x") == NotMatched(("GET",))
    assert ROUTER.match("GET", "/v1/nowhere") == NotMatched(())


def _test_contract() -> list[ServiceDescriptor]:
    """A contract with the mapping features the RLaaS protos do not (yet) use."""
    pool = descriptor_pool.DescriptorPool()
    for dep in (descriptor_pb2, http_pb2, annotations_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        dep.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    f = descriptor_pb2.FileDescriptorProto(name="t/v1/t.proto", package="t.v1", syntax="proto3")
    f.dependency.append("google/api/annotations.proto")
    shelf = f.message_type.add(name="Shelf")
    shelf.field.add(name="name", number=1, type=9, label=1, json_name="name")
    shelf.field.add(name="theme", number=2, type=9, label=1, json_name="theme")
    req = f.message_type.add(name="UpdateShelfRequest")
    req.field.add(
        name="shelf", number=1, type=11, type_name=".t.v1.Shelf", label=1, json_name="shelf"
    )
    req.field.add(name="tags", number=2, type=9, label=3, json_name="tags")
    req.field.add(name="dry_run", number=3, type=8, label=1, json_name="dryRun")
    service = f.service.add(name="ShelfService")
    method = service.method.add(
        name="UpdateShelf", input_type=".t.v1.UpdateShelfRequest", output_type=".t.v1.Shelf"
    )
    rule = http_pb2.HttpRule(patch="/v1/{shelf.name=shelves/*}", body="shelf")
    rule.additional_bindings.add(post="/v1/{shelf.name=shelves/*}:update", body="*")
    rule.additional_bindings.add(get="/v1/shelves/{shelf.name}/theme", response_body="theme")
    method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    pool.Add(f)
    return [pool.FindServiceByName("t.v1.ShelfService")]


def test_additional_bindings_nested_variables_and_body_field() -> None:
    routes = routes_for(_test_contract())
    assert [(r.http_method, r.template.text, r.body, r.binding) for r in routes] == [
        ("PATCH", "/v1/{shelf.name=shelves/*}", "shelf", 0),
        ("POST", "/v1/{shelf.name=shelves/*}:update", "*", 1),
        ("GET", "/v1/shelves/{shelf.name}/theme", "", 2),
    ]
    router = Router(routes)
    cls = message_factory.GetMessageClass(routes[0].method.input_type)

    patch = router.match("PATCH", "/v1/shelves/s1")
    assert isinstance(patch, Matched)
    body = json.dumps({"theme": "sea", "name": "ignored"}).encode()
    query = [("tags", "a"), ("tags", "b"), ("dry_run", "true"), ("shelf.theme", "ignored")]
    req = build_request(patch.route, cls(), patch.path_params, query, body)
    # The body fills `shelf`, the query the rest (a repeated field repeated, bools from
    # text, the body's field filtered out), the path wins over the body.
    got: Any = req
    assert (got.shelf.name, got.shelf.theme, list(got.tags), got.dry_run) == (
        "shelves/s1", "sea", ["a", "b"], True
    )  # fmt: skip

    get = router.match("GET", "/v1/shelves/s2/theme")
    assert isinstance(get, Matched)
    got = build_request(get.route, cls(), get.path_params, [("shelf.theme", "x")], b"")
    assert got.shelf.name == "s2" and got.shelf.theme == "x"  # nested query parameter
    # A class built at run time: its fields are unknown to the type checker.
    shelf_cls: Any = message_factory.GetMessageClass(get.route.method.output_type)
    assert response_json(get.route, shelf_cls(name="s2", theme="x")) == "x"

    with pytest.raises(RouteError):
        routes_for([_bad_contract()])


def _bad_contract() -> ServiceDescriptor:
    pool = descriptor_pool.DescriptorPool()
    for dep in (descriptor_pb2, http_pb2, annotations_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        dep.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    f = descriptor_pb2.FileDescriptorProto(name="b.proto", package="b", syntax="proto3")
    f.dependency.append("google/api/annotations.proto")
    f.message_type.add(name="R").field.add(name="x", number=1, type=9, label=1, json_name="x")
    method = f.service.add(name="S").method.add(name="M", input_type=".b.R", output_type=".b.R")
    method.options.Extensions[annotations_pb2.http].CopyFrom(http_pb2.HttpRule(get="/v1/{nope}"))
    pool.Add(f)
    return pool.FindServiceByName("b.S")


# ---- transcoding -------------------------------------------------------------------


def test_query_parameters_like_grpc_gateway() -> None:
    req = request_for(
        "ListInteractions",
        {},
        [
            ("pageSize", "5"),  # lowerCamelCase
            ("user_id", "u1"),  # or the proto name
            ("startTime", "2026-01-02T03:04:05Z"),  # a Timestamp from its JSON string
            ("hasFeedback", "false"),
            ("labels[team]", "blue"),  # a map entry
            ("not_a_field", "x"),  # ignored, as grpc-gateway does
        ],
    )
    assert req.page_size == 5 and req.user_id == "u1" and req.labels == {"team": "blue"}
    assert req.start_time == timestamp_pb2.Timestamp(seconds=1767323045)
    assert req.HasField("has_feedback") or req.has_feedback is False
    # Enums by name or by number.
    named = request_for("ListPolicies", {}, [("state", "STATE_ACTIVE")])
    numbered = request_for("ListPolicies", {}, [("state", str(named.state))])
    assert named.state == numbered.state == registry_pb2.Policy.STATE_ACTIVE


@pytest.mark.parametrize(
    ("method", "params", "query", "body", "field"),
    [
        ("ListInteractions", {}, [("pageSize", "ten")], None, "page_size"),
        ("ListInteractions", {}, [("hasFeedback", "maybe")], None, "hasFeedback"),
        ("ListInteractions", {}, [("startTime", "yesterday")], None, "start_time"),
        ("ListPolicies", {}, [("state", "ACTIVE")], None, "state"),
        ("ListPolicies", {}, [("state", "99")], None, "state"),
        ("CreateInteraction", {}, [], {"interaction": "hello"}, "interaction"),
        (
            "CreateInteraction",
            {},
            [],
            {"interaction": {"input": {"messages": {}}}},
            "interaction.input.messages",
        ),
        (
            "CreateInteraction",
            {},
            [],
            {"interaction": {"usage": {"promptTokens": "x"}}},
            "interaction.usage.promptTokens",
        ),
        ("CreateSkill", {}, [], ["not", "an", "object"], "skill"),
        ("GetSkill", {}, [], None, None),  # no failure: path-less call is just empty
    ],
)
def test_bad_input_names_the_field(
    method: str, params: dict[str, str], query: list[tuple[str, str]], body: Any, field: str | None
) -> None:
    if field is None:
        request_for(method, params, query, body)
        return
    with pytest.raises(BadInput) as err:
        request_for(method, params, query, body)
    assert field in err.value.field, err.value
    status = err.value.status()
    assert status.code == code_pb2.INVALID_ARGUMENT and http_status(status.code) == 400


def test_body_star_and_path_win() -> None:
    body = {
        "skill": "other",
        "messages": [{"role": "ROLE_USER", "content": "hi"}],
        "request_id": "r",
    }
    req = request_for("Infer", {"skill": "support_email"}, [("user_id", "ignored")], body)
    assert req.skill == "support_email" and req.request_id == "r" and req.user_id == ""
    assert req.messages[0].content == "hi"
    with pytest.raises(BadInput):
        route = route_of("Infer")
        cls = message_factory.GetMessageClass(route.method.input_type)
        build_request(route, cls(), {"skill": "s"}, [], b"{not json")


def test_responses_are_proto3_json_with_unpopulated_fields() -> None:
    route = route_of("Infer")
    out = response_json(
        route,
        inference_pb2.InferResponse(
            interaction_id="i1", latency=duration_pb2.Duration(nanos=1_500_000)
        ),
    )
    assert out["interactionId"] == "i1" and out["latency"] == "0.001500s"
    assert out["text"] == "" and out["guardrailFlags"] == []  # EmitUnpopulated
    assert out["finishReason"] == "FINISH_REASON_UNSPECIFIED"


def test_http_status_is_grpc_gateways_mapping() -> None:
    expected = {
        "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
        "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
        "PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401, "RESOURCE_EXHAUSTED": 429,
        "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400,
        "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500,
    }  # fmt: skip
    assert {code_pb2.Code.Name(c): s for c, s in HTTP_STATUS.items()} == expected


# ---- OpenAPI -----------------------------------------------------------------------


def test_openapi_is_valid_and_matches_the_routes() -> None:
    document = openapi.build(SERVICES)
    validate(document)
    operations = {
        (method.upper(), path): op["operationId"]
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    assert operations == {
        (r.http_method, r.template.openapi_path()): r.operation_id for r in ROUTES
    }
    schemas = document["components"]["schemas"]
    usage = schemas["rlaas.telemetry.v1.TokenUsage"]["properties"]
    assert usage["promptTokens"]["type"] == "string"  # int64: a JSON string
    citation = schemas["rlaas.telemetry.v1.Citation"]["properties"]
    assert citation["startIndex"] == {"type": "integer", "format": "int32"}
    assert schemas["google.protobuf.Timestamp"] == {"type": "string", "format": "date-time"}
    infer = document["paths"]["/v1/skills/{skill}:infer"]["post"]
    body = infer["requestBody"]["content"]["application/json"]["schema"]
    assert "skill" not in body["properties"] and "requestId" in body["required"]
    stream = document["paths"]["/v1/events:ingest"]["post"]
    assert openapi.NDJSON in stream["requestBody"]["content"]
    assert openapi.NDJSON in stream["responses"]["200"]["content"]


def test_generated_openapi_file_is_this_generator_on_these_protos() -> None:
    """gen/openapi carries proto comments; without them it is what the runtime builds."""
    on_disk = json.loads(openapi.OPENAPI_FILE.read_text())

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "description"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    assert strip(on_disk) == strip(openapi.build(SERVICES))
