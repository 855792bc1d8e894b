"""The contract: buf lint, gen/ freshness, and the rules every RPC must follow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from infra import codegen
from rlaas.options.v1 import options_pb2
from services.app import service_specs
from services.server.policy import rules_for
from tests.helpers import ROOT

pytestmark = pytest.mark.unit

BUF = str(Path(sys.executable).parent / "buf")
ERROR_CODES = (
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "FAILED_PRECONDITION",
    "UNAUTHENTICATED",
    "ABORTED",
    "RESOURCE_EXHAUSTED",
    "UNAVAILABLE",
)


@pytest.fixture(scope="module")
def image() -> descriptor_pb2.FileDescriptorSet:
    """The contract compiled by buf, with source info (comments)."""
    codegen.copy_googleapis()
    out = subprocess.run(
        [BUF, "build", "-o", "-#format=binpb"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return descriptor_pb2.FileDescriptorSet.FromString(out)


def test_buf_lint_passes() -> None:
    codegen.copy_googleapis()
    result = subprocess.run([BUF, "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gen_is_fresh() -> None:
    assert codegen.stale_files() == [], "gen/ is stale: run `make gen`"


def test_services_in_versioned_packages() -> None:
    specs = service_specs()
    assert sorted(specs) == ["inference", "registry", "retrieval", "telemetry", "training"]
    for name, spec in specs.items():
        assert spec.descriptor.full_name == f"rlaas.{name}.v1.{name.capitalize()}Service"


def test_every_rpc_has_scope_and_http_mapping() -> None:
    specs = service_specs().values()
    rules = rules_for(s.descriptor for s in specs)  # raises if any RPC lacks a scope
    methods = [m for s in specs for m in s.descriptor.methods]
    assert len(rules) == len(methods) > 40
    for method in methods:
        http = method.GetOptions().Extensions[annotations_pb2.http]
        assert http.WhichOneof("pattern"), f"{method.full_name} has no google.api.http"
        path = getattr(http, http.WhichOneof("pattern"))
        assert path.startswith("/v1/"), method.full_name


def test_every_rpc_comment_names_its_errors(image: descriptor_pb2.FileDescriptorSet) -> None:
    missing = []
    for file in image.file:
        if not file.package.startswith("rlaas."):
            continue
        comments = {tuple(loc.path): loc.leading_comments for loc in file.source_code_info.location}
        for s_index, service in enumerate(file.service):
            for m_index, method in enumerate(service.method):
                text = comments.get((6, s_index, 2, m_index), "")
                if not any(code in text for code in ERROR_CODES):
                    missing.append(f"{service.name}.{method.name}")
    assert missing == []


# POST because their requests carry structured filters and labelled sets (a GET's query
# string cannot), but they read only: nothing to make idempotent.
READ_ONLY_POSTS = {
    "rlaas.retrieval.v1.RetrievalService.Search",
    "rlaas.retrieval.v1.RetrievalService.EvaluateRetrieval",
}


def test_mutations_carry_request_id_and_lists_page() -> None:
    problems = []
    for spec in service_specs().values():
        for method in spec.descriptor.methods:
            fields = method.input_type.fields_by_name
            http = method.GetOptions().Extensions[annotations_pb2.http]
            is_mutation = http.WhichOneof("pattern") in ("post", "patch", "delete", "put")
            is_mutation = is_mutation and method.full_name not in READ_ONLY_POSTS
            if method.name.startswith("List"):
                for f in ("page_size", "page_token"):
                    if f not in fields:
                        problems.append(f"{method.full_name} lacks {f}")
                if "next_page_token" not in method.output_type.fields_by_name:
                    problems.append(f"{method.full_name} lacks next_page_token")
            elif is_mutation and not method.client_streaming and "request_id" not in fields:
                # Streaming ingest carries an idempotency key per event instead.
                problems.append(f"{method.full_name} lacks request_id")
    assert problems == []


def test_no_request_carries_a_tenant_except_operator_rpcs() -> None:
    for spec in service_specs().values():
        for method in spec.descriptor.methods:
            operator_only = method.GetOptions().Extensions[options_pb2.operator_only]
            if "tenant_id" in method.input_type.fields_by_name:
                assert operator_only, f"{method.full_name} takes tenant_id from the body"
