"""How the platform names an adapter to a serving engine (vLLM, Triton): its object key
and the sha256 of its weights, ``<key>@<sha256>``. The engine fetches that key from the
same object store and checks the hash itself (engines/adapters), so nothing but the
store is shared between the gateway's host and the engine's."""

from __future__ import annotations

from services.errors import FailedPrecondition, InvalidArgument
from services.inference.backends.base import AdapterRef
from services.objects.store import ObjectStore, key_for_uri

ADAPTER_UNAVAILABLE = "ADAPTER_UNAVAILABLE"
"""The engine cannot fetch or load the adapter (not in the store, hash differs, or it
does not fit the engine): FailedPrecondition."""


def engine_adapter_name(objects: ObjectStore, ref: AdapterRef) -> str:
    try:
        key = key_for_uri(objects, ref.uri)
    except InvalidArgument as exc:
        raise FailedPrecondition(
            f"adapter {ref.name!r}: {exc.message}; the engine reads only that store",
            reason=ADAPTER_UNAVAILABLE,
        ) from exc
    return f"{key}@{ref.sha256.lower()}"
