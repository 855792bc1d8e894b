"""RetrievalService against the real server, Postgres and milvus-lite: indexes,
content-addressed upserts, dense / sparse / hybrid search with filters, deletes that
reach Milvus, tenant isolation, and bad input."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import numpy as np
import pytest

from rlaas.options.v1 import options_pb2
from rlaas.retrieval.v1 import retrieval_pb2 as pb
from rlaas.retrieval.v1 import retrieval_pb2_grpc
from services.retrieval.embedding import DIMENSION
from services.retrieval.vectors import ChunkVector, VectorStore
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error, scoped_key

pytestmark = pytest.mark.integration

DENSE, SPARSE, HYBRID = pb.SEARCH_MODE_DENSE, pb.SEARCH_MODE_SPARSE, pb.SEARCH_MODE_HYBRID
CREATED, UPDATED, UNCHANGED = (
    pb.DocumentResult.OUTCOME_CREATED,
    pb.DocumentResult.OUTCOME_UPDATED,
    pb.DocumentResult.OUTCOME_UNCHANGED,
)

PASSWORD = (
    "Resetting your password. Open Settings, choose Security and click 'Reset password'. "
    "We email you a link that expires after 30 minutes. If the email does not arrive, "
    "check your spam folder or ask an administrator to unlock the account."
)
SHIPPING = (
    "Shipping times. Orders leave our warehouse within two business days. Express "
    "delivery arrives the next day; international parcels may take up to ten days. "
    "Tracking numbers are sent by text message once the parcel is handed to the courier."
)
REFUNDS = (
    "Refund policy. Refunds go back to the original payment method within five days "
    "after the returned item reaches us. Gift cards cannot be refunded."
)
PRIVATE = (
    "Executive compensation review. The board approves salary bands for directors each "
    "spring; the figures are confidential to the finance team."
)


def rid() -> str:
    return str(uuid.uuid4())


def doc(document_id: str, text: str, **kw: object) -> pb.Document:
    metadata = kw.pop("metadata", None)
    d = pb.Document(document_id=document_id, text=text, **kw)
    if metadata:
        d.metadata.update(metadata)
    return d


@dataclass
class Tenant:
    tenant_id: str
    admin: str
    infer: str


async def make_tenant(stack: RunningStack, channel: grpc.aio.Channel, name: str) -> Tenant:
    tenant_id, admin = await new_tenant(channel, stack.admin_key, name)
    return Tenant(tenant_id, admin, await scoped_key(channel, admin, options_pb2.SCOPE_INFER))


@pytest.fixture(scope="module")
async def tenant(stack: RunningStack, channel: grpc.aio.Channel) -> Tenant:
    return await make_tenant(stack, channel, "retrieval")


@pytest.fixture(scope="module")
async def milvus(stack: RunningStack) -> AsyncIterator[VectorStore]:
    """Milvus itself (not through the service), to prove what is and is not stored."""
    store = VectorStore(
        stack.settings.milvus_target,
        token=None,
        collection=stack.settings.milvus_collection,
        dimension=DIMENSION,
    )
    yield store
    store.close()


def stub(channel: grpc.aio.Channel) -> retrieval_pb2_grpc.RetrievalServiceStub:
    return retrieval_pb2_grpc.RetrievalServiceStub(channel)


async def create_index(
    channel: grpc.aio.Channel, key: str, index_id: str, **chunking: int
) -> pb.Index:
    reply = await stub(channel).CreateIndex(
        pb.CreateIndexRequest(
            index=pb.Index(index_id=index_id, chunking=pb.ChunkingConfig(**chunking)),
            request_id=rid(),
        ),
        metadata=md(key),
    )
    return reply.index


async def upsert(
    channel: grpc.aio.Channel, key: str, index_id: str, *docs: pb.Document
) -> pb.UpsertDocumentsResponse:
    return await stub(channel).UpsertDocuments(
        pb.UpsertDocumentsRequest(index_id=index_id, documents=docs, request_id=rid()),
        metadata=md(key),
    )


async def search(
    channel: grpc.aio.Channel, key: str, index_id: str, query: str, **kw: object
) -> pb.SearchResponse:
    return await stub(channel).Search(
        pb.SearchRequest(index_id=index_id, query=query, **kw),
        metadata=md(key),
    )


def doc_ids(reply: pb.SearchResponse) -> list[str]:
    return [h.chunk.document_id for h in reply.hits]


async def test_upsert_search_update_delete_round_trip(
    channel: grpc.aio.Channel, tenant: Tenant, milvus: VectorStore
) -> None:
    s, key = stub(channel), tenant.admin
    index = await create_index(channel, key, "kb", chunk_size=120, parent_chunk_size=300)
    assert (index.tenant_id, index.embedding_model, index.dimension) == (
        tenant.tenant_id,
        "all-MiniLM-L6-v2",
        384,
    )
    assert index.chunking.chunk_overlap == 60  # the default 100, at most half the size
    docs = [
        doc("password", PASSWORD, title="Password reset", source_uri="kb://password"),
        doc("shipping", SHIPPING, title="Shipping"),
        doc("refunds", REFUNDS),
    ]
    first = await upsert(channel, key, "kb", *docs)
    assert [r.outcome for r in first.results] == [CREATED] * 3
    assert first.index.document_count == 3
    assert first.index.chunk_count == sum(r.chunk_count for r in first.results) > 3
    assert first.index.content_version == 1

    # Chunks: exact offsets into the text, in order, each inside its parent.
    got = await s.GetDocument(
        pb.GetDocumentRequest(index_id="kb", document_id="password"), metadata=md(key)
    )
    assert got.document.text == PASSWORD and got.document.title == "Password reset"
    assert [c.position for c in got.chunks] == list(range(len(got.chunks)))
    for chunk in got.chunks:
        assert PASSWORD[chunk.start_offset : chunk.end_offset] == chunk.text
        assert chunk.parent_chunk_id.startswith("par_") and chunk.source_uri == "kb://password"
    stored = await milvus.chunk_ids(tenant.tenant_id, "kb", "password")
    assert stored == sorted(c.chunk_id for c in got.chunks)

    # Each mode finds the obviously relevant document first.
    for mode in (DENSE, SPARSE, HYBRID):
        reply = await search(channel, key, "kb", "how do I reset my password", mode=mode)
        assert reply.mode == mode and reply.content_version == 1
        assert doc_ids(reply)[0] == "password", (mode, doc_ids(reply))
        assert [h.rank for h in reply.hits] == list(range(len(reply.hits)))
        best = reply.hits[0]
        if mode != SPARSE:
            assert 0.3 < best.dense_score <= 1.0
        if mode != DENSE:
            assert best.sparse_score > 0
    # Dense finds meaning without shared words; sparse finds nothing there.
    dense = await search(channel, key, "kb", "when is my parcel delivered", mode=DENSE, top_k=1)
    assert doc_ids(dense) == ["shipping"]
    assert not (await search(channel, key, "kb", "xylophone zebra", mode=SPARSE)).hits
    # min_score in the mode's own scale, and top_k bounds the page.
    high = await search(channel, key, "kb", "reset password", mode=DENSE, min_score=0.99)
    assert not high.hits
    assert len((await search(channel, key, "kb", "orders", top_k=2)).hits) <= 2
    reranked = await search(channel, key, "kb", "refund to the payment method", rerank=True)
    assert reranked.reranker == "bm25" and doc_ids(reranked)[0] == "refunds"

    # The same content again: nothing changes, not even the version.
    again = await upsert(channel, key, "kb", *docs)
    assert [r.outcome for r in again.results] == [UNCHANGED] * 3
    assert again.index.content_version == 1
    assert [r.content_sha256 for r in again.results] == [r.content_sha256 for r in first.results]

    # A changed document replaces its chunks, in Postgres and in Milvus.
    old_ids = stored
    changed = doc("password", "Passwords now rotate every ninety days automatically.")
    updated = await upsert(channel, key, "kb", changed)
    assert [r.outcome for r in updated.results] == [UPDATED]
    assert updated.index.content_version == 2 and updated.index.document_count == 3
    new_ids = await milvus.chunk_ids(tenant.tenant_id, "kb", "password")
    assert new_ids and not set(new_ids) & set(old_ids)
    got = await s.GetDocument(
        pb.GetDocumentRequest(index_id="kb", document_id="password"), metadata=md(key)
    )
    assert sorted(c.chunk_id for c in got.chunks) == new_ids
    for mode in (DENSE, SPARSE, HYBRID):
        reply = await search(channel, key, "kb", "password rotation ninety days", mode=mode)
        assert reply.hits[0].chunk.text == changed.text
        assert all("spam folder" not in h.chunk.text for h in reply.hits)

    # Delete: gone from search and from Milvus; counts and version follow.
    deleted = await s.DeleteDocument(
        pb.DeleteDocumentRequest(index_id="kb", document_id="password", request_id=rid()),
        metadata=md(key),
    )
    assert deleted.deleted_chunk_count == len(new_ids)
    assert await milvus.chunk_ids(tenant.tenant_id, "kb", "password") == []
    for mode in (DENSE, SPARSE, HYBRID):
        reply = await search(channel, key, "kb", "password rotation", mode=mode, top_k=20)
        assert "password" not in doc_ids(reply)
    index = (await s.GetIndex(pb.GetIndexRequest(index_id="kb"), metadata=md(key))).index
    assert (index.document_count, index.content_version) == (2, 3)
    listed = await s.ListDocuments(
        pb.ListDocumentsRequest(index_id="kb", page_size=1), metadata=md(key)
    )
    assert [d.document_id for d in listed.documents] == ["refunds"] and listed.next_page_token
    assert listed.documents[0].text == ""  # lists carry no text
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await s.GetDocument(
            pb.GetDocumentRequest(index_id="kb", document_id="password"), metadata=md(key)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    # Deleting the index removes every chunk from Milvus.
    gone = await s.DeleteIndex(
        pb.DeleteIndexRequest(index_id="kb", request_id=rid()), metadata=md(key)
    )
    assert (gone.deleted_document_count, gone.deleted_chunk_count) == (2, index.chunk_count)
    assert await milvus.chunk_ids(tenant.tenant_id, "kb") == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await search(channel, key, "kb", "shipping")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_filters_apply_in_every_mode(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    key = tenant.admin
    await create_index(channel, key, "filtered")
    await upsert(
        channel,
        key,
        "filtered",
        doc("shipping-en", SHIPPING, metadata={"lang": "en", "year": 2026, "public": True}),
        doc("shipping-old", SHIPPING + " (2019 edition)", metadata={"lang": "en", "year": 2019}),
        doc("refunds", REFUNDS, metadata={"lang": "de"}),
        doc("salaries", PRIVATE, access_tag="finance"),
    )
    query = "shipping delivery refunds salary"
    for mode in (DENSE, SPARSE, HYBRID):
        everything = set(
            doc_ids(await search(channel, key, "filtered", query, mode=mode, top_k=20))
        )
        assert everything == {"shipping-en", "shipping-old", "refunds", "salaries"}, mode

        by_meta = pb.SearchFilter()
        by_meta.metadata_equals.update({"lang": "en", "year": 2026})
        reply = await search(channel, key, "filtered", query, mode=mode, top_k=20, filter=by_meta)
        assert set(doc_ids(reply)) == {"shipping-en"}, mode
        by_bool = pb.SearchFilter()
        by_bool.metadata_equals.update({"public": True})
        reply = await search(channel, key, "filtered", query, mode=mode, top_k=20, filter=by_bool)
        assert set(doc_ids(reply)) == {"shipping-en"}, mode

        # Access tags: untagged documents are public; tagged ones need a matching tag.
        tags = pb.SearchFilter(access_tags=["support"])
        reply = await search(channel, key, "filtered", query, mode=mode, top_k=20, filter=tags)
        assert "salaries" not in doc_ids(reply) and "refunds" in doc_ids(reply), mode
        tags = pb.SearchFilter(access_tags=["finance"])
        reply = await search(channel, key, "filtered", query, mode=mode, top_k=20, filter=tags)
        assert "salaries" in doc_ids(reply), mode

        only = pb.SearchFilter(document_ids=["refunds", "salaries"])
        reply = await search(channel, key, "filtered", query, mode=mode, top_k=20, filter=only)
        assert set(doc_ids(reply)) == {"refunds", "salaries"}, mode


async def test_tenants_never_see_each_others_chunks(
    stack: RunningStack, channel: grpc.aio.Channel, milvus: VectorStore
) -> None:
    a = await make_tenant(stack, channel, "retrieval-a")
    b = await make_tenant(stack, channel, "retrieval-b")
    c = await make_tenant(stack, channel, "retrieval-c")
    # The same index id and the same document id in two tenants.
    for t, text in ((a, SHIPPING), (b, PRIVATE)):
        await create_index(channel, t.admin, "shared")
        await upsert(channel, t.admin, "shared", doc("doc", text))
    for mode in (DENSE, SPARSE, HYBRID):
        for query in ("shipping parcels courier", "salary bands board"):
            ra = await search(channel, a.infer, "shared", query, mode=mode, top_k=100)
            rb = await search(channel, b.infer, "shared", query, mode=mode, top_k=100)
            assert all(h.chunk.text in SHIPPING for h in ra.hits), (mode, query)
            assert all(h.chunk.text in PRIVATE for h in rb.hits), (mode, query)
    # Chunk ids differ per tenant, and Milvus holds each tenant's rows under its own id.
    ids_a = set(await milvus.chunk_ids(a.tenant_id, "shared"))
    ids_b = set(await milvus.chunk_ids(b.tenant_id, "shared"))
    assert ids_a and ids_b and not ids_a & ids_b
    # A tenant without the index gets NOT_FOUND everywhere, however it asks.
    s = stub(channel)
    calls = [
        s.GetIndex(pb.GetIndexRequest(index_id="shared"), metadata=md(c.admin)),
        s.Search(pb.SearchRequest(index_id="shared", query="shipping"), metadata=md(c.admin)),
        s.GetDocument(
            pb.GetDocumentRequest(index_id="shared", document_id="doc"), metadata=md(c.admin)
        ),
        s.UpsertDocuments(
            pb.UpsertDocumentsRequest(
                index_id="shared", documents=[doc("x", "text")], request_id=rid()
            ),
            metadata=md(c.admin),
        ),
        s.DeleteDocument(
            pb.DeleteDocumentRequest(index_id="shared", document_id="doc", request_id=rid()),
            metadata=md(c.admin),
        ),
        s.DeleteIndex(
            pb.DeleteIndexRequest(index_id="shared", request_id=rid()), metadata=md(c.admin)
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await s.ListIndexes(pb.ListIndexesRequest(), metadata=md(c.admin))
    assert list(listed.indexes) == []
    # Nothing of A's or B's was touched by C's attempts.
    assert set(await milvus.chunk_ids(a.tenant_id, "shared")) == ids_a
    assert set(await milvus.chunk_ids(b.tenant_id, "shared")) == ids_b


async def test_orphan_vectors_are_never_returned_and_a_retry_removes_them(
    channel: grpc.aio.Channel, tenant: Tenant, milvus: VectorStore
) -> None:
    """A crash between the Milvus write and the Postgres commit leaves vectors without
    chunk rows: search must not return them, and the retried upsert cleans them up."""
    key = tenant.admin
    await create_index(channel, key, "repair")
    await upsert(channel, key, "repair", doc("refunds", REFUNDS))
    real = await milvus.chunk_ids(tenant.tenant_id, "repair")
    reply = await search(channel, key, "repair", "refund", mode=DENSE, top_k=1)
    query_hit = reply.hits[0]
    # An orphan of an interrupted update of the same document, closer to any query.
    vector = np.zeros(DIMENSION, dtype=np.float32)
    vector[0] = 1.0
    orphan = ChunkVector("chk_orphan", "refunds", "f" * 64, "", {}, vector)
    await milvus.upsert(tenant.tenant_id, "repair", [orphan])
    assert "chk_orphan" in await milvus.chunk_ids(tenant.tenant_id, "repair")
    for mode in (DENSE, HYBRID):
        reply = await search(channel, key, "repair", "refund", mode=mode, top_k=10)
        assert "chk_orphan" not in [h.chunk.chunk_id for h in reply.hits]
        assert reply.hits[0].chunk.chunk_id == query_hit.chunk.chunk_id
    again = await upsert(channel, key, "repair", doc("refunds", REFUNDS))
    assert again.results[0].outcome == UNCHANGED
    assert await milvus.chunk_ids(tenant.tenant_id, "repair") == real


async def test_bad_input_is_refused_with_the_field_named(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    s, key = stub(channel), tenant.admin
    await create_index(channel, key, "strict")

    async def fails(call: object) -> tuple[grpc.StatusCode, list[str], str | None]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call  # type: ignore[misc]
        info = rich_error(err.value)
        return info.code, [f for f, _ in info.field_violations], info.reason

    bad = grpc.StatusCode.INVALID_ARGUMENT
    cases: list[tuple[object, grpc.StatusCode, list[str]]] = [
        (
            s.CreateIndex(
                pb.CreateIndexRequest(index=pb.Index(index_id="Bad Id"), request_id=rid()),
                metadata=md(key),
            ),
            bad,
            ["index.index_id"],
        ),
        (
            s.CreateIndex(
                pb.CreateIndexRequest(
                    index=pb.Index(index_id="ok", chunking=pb.ChunkingConfig(chunk_size=10)),
                    request_id=rid(),
                ),
                metadata=md(key),
            ),
            bad,
            ["index.chunking.chunk_size"],
        ),
        (
            s.CreateIndex(
                pb.CreateIndexRequest(index=pb.Index(index_id="strict"), request_id=rid()),
                metadata=md(key),
            ),
            grpc.StatusCode.ALREADY_EXISTS,
            [],
        ),
        (
            s.Search(pb.SearchRequest(index_id="strict", query="  "), metadata=md(key)),
            bad,
            ["query"],
        ),
        (
            s.Search(pb.SearchRequest(index_id="strict", query="q", top_k=101), metadata=md(key)),
            bad,
            ["top_k"],
        ),
        (
            s.Search(pb.SearchRequest(index_id="strict", query="q", mode=9), metadata=md(key)),
            bad,
            ["mode"],
        ),
        (
            s.UpsertDocuments(
                pb.UpsertDocumentsRequest(
                    index_id="strict",
                    documents=[doc("a", ""), doc("b", "text"), doc("b", "text")],
                    request_id=rid(),
                ),
                metadata=md(key),
            ),
            bad,
            ["documents[0].text", "documents[2].document_id"],
        ),
        # A NUL is refused as the request is decoded, before any other check (every RPC).
        (
            s.UpsertDocuments(
                pb.UpsertDocumentsRequest(
                    index_id="strict",
                    documents=[doc("a", ""), doc("b", "x\x00y"), doc("b", "text")],
                    request_id=rid(),
                ),
                metadata=md(key),
            ),
            bad,
            ["documents[1].text"],
        ),
        (
            s.UpsertDocuments(
                pb.UpsertDocumentsRequest(index_id="strict", documents=[], request_id=rid()),
                metadata=md(key),
            ),
            bad,
            ["documents"],
        ),
        (
            s.UpsertDocuments(
                pb.UpsertDocumentsRequest(index_id="strict", documents=[doc("a", "text")]),
                metadata=md(key),
            ),
            bad,
            ["request_id"],
        ),
        (
            s.GetDocument(
                pb.GetDocumentRequest(index_id="strict", document_id="nope"), metadata=md(key)
            ),
            grpc.StatusCode.NOT_FOUND,
            [],
        ),
        (
            s.EvaluateRetrieval(
                pb.EvaluateRetrievalRequest(
                    index_id="strict", queries=[pb.LabelledQuery(query="q")]
                ),
                metadata=md(tenant.admin),
            ),
            bad,
            ["queries[0].relevant_document_ids"],
        ),
        # An INFER key may search but not write.
        (
            s.UpsertDocuments(
                pb.UpsertDocumentsRequest(
                    index_id="strict", documents=[doc("a", "text")], request_id=rid()
                ),
                metadata=md(tenant.infer),
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            [],
        ),
    ]
    nested = doc("n", "text")
    nested.metadata.update({"tags": ["a", "b"]})
    cases.append(
        (
            s.UpsertDocuments(
                pb.UpsertDocumentsRequest(index_id="strict", documents=[nested], request_id=rid()),
                metadata=md(key),
            ),
            bad,
            ["documents[0].metadata.tags"],
        )
    )
    for call, code, fields in cases:
        got_code, got_fields, _ = await fails(call)
        assert (got_code, got_fields) == (code, fields)
    # Nothing was stored by the refused calls.
    index = (await s.GetIndex(pb.GetIndexRequest(index_id="strict"), metadata=md(key))).index
    assert (index.document_count, index.content_version) == (0, 0)


async def test_evaluate_retrieval_measures_the_index(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    key = tenant.admin
    await create_index(channel, key, "evaluated")
    await upsert(
        channel,
        key,
        "evaluated",
        doc("password", PASSWORD),
        doc("shipping", SHIPPING),
        doc("refunds", REFUNDS),
    )
    reply = await stub(channel).EvaluateRetrieval(
        pb.EvaluateRetrievalRequest(
            index_id="evaluated",
            k=1,
            queries=[
                pb.LabelledQuery(query="reset my password", relevant_document_ids=["password"]),
                pb.LabelledQuery(
                    query="how long does delivery take", relevant_document_ids=["shipping"]
                ),
                pb.LabelledQuery(
                    query="money back for a return", relevant_document_ids=["refunds"]
                ),
            ],
        ),
        metadata=md(key),
    )
    m = reply.metrics
    assert (m.query_count, m.k, reply.mode) == (3, 1, HYBRID)
    assert m.recall_at_k == pytest.approx(1.0) and m.mrr == pytest.approx(1.0)
    assert m.ndcg_at_10 == pytest.approx(1.0)
