"""The Temporal client, as every part of the platform opens it: from the settings."""

from __future__ import annotations

from temporalio.client import Client

from services.config import Settings


async def connect(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_target, namespace=settings.temporal_namespace)
