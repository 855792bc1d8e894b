"""RegistryService: thin servicer over the domain core. RPCs not yet implemented by
this server fall through to the generated base class and answer UNIMPLEMENTED."""

from __future__ import annotations

import grpc

from rlaas.registry.v1 import registry_pb2, registry_pb2_grpc
from services.registry import converters as cv
from services.server.app import ServiceSpec
from services.server.interceptors import principal
from services.tenancy.service import TenancyService


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, tenancy: TenancyService) -> None:
        self._tenancy = tenancy

    async def CreateTenant(
        self, request: registry_pb2.CreateTenantRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.CreateTenantResponse:
        created = await self._tenancy.create_tenant(
            principal(), display_name=request.tenant.display_name, request_id=request.request_id
        )
        return registry_pb2.CreateTenantResponse(
            tenant=cv.tenant_to_proto(created.tenant),
            admin_api_key=cv.api_key_to_proto(created.admin_key.api_key),
            admin_api_key_secret=created.admin_key.secret,
        )

    async def GetTenant(
        self, request: registry_pb2.GetTenantRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetTenantResponse:
        tenant = await self._tenancy.get_tenant(principal(), request.tenant_id)
        return registry_pb2.GetTenantResponse(tenant=cv.tenant_to_proto(tenant))

    async def ListTenants(
        self, request: registry_pb2.ListTenantsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListTenantsResponse:
        tenants, token = await self._tenancy.list_tenants(
            principal(), page_size=request.page_size, page_token=request.page_token
        )
        return registry_pb2.ListTenantsResponse(
            tenants=[cv.tenant_to_proto(t) for t in tenants], next_page_token=token
        )

    async def CreateApiKey(
        self, request: registry_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.CreateApiKeyResponse:
        created = await self._tenancy.create_api_key(
            principal(),
            display_name=request.api_key.display_name,
            scopes=cv.scopes_from_proto(request.api_key.scopes, "api_key.scopes"),
            expire_time=cv.optional_datetime(request.api_key, "expire_time"),
            request_id=request.request_id,
        )
        return registry_pb2.CreateApiKeyResponse(
            api_key=cv.api_key_to_proto(created.api_key), secret=created.secret
        )

    async def GetApiKey(
        self, request: registry_pb2.GetApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetApiKeyResponse:
        key = await self._tenancy.get_api_key(principal(), request.api_key_id)
        return registry_pb2.GetApiKeyResponse(api_key=cv.api_key_to_proto(key))

    async def ListApiKeys(
        self, request: registry_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListApiKeysResponse:
        keys, token = await self._tenancy.list_api_keys(
            principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            show_revoked=request.show_revoked,
        )
        return registry_pb2.ListApiKeysResponse(
            api_keys=[cv.api_key_to_proto(k) for k in keys], next_page_token=token
        )

    async def RevokeApiKey(
        self, request: registry_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.RevokeApiKeyResponse:
        key = await self._tenancy.revoke_api_key(
            principal(), request.api_key_id, request_id=request.request_id
        )
        return registry_pb2.RevokeApiKeyResponse(api_key=cv.api_key_to_proto(key))

    async def GetCallerIdentity(
        self, request: registry_pb2.GetCallerIdentityRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetCallerIdentityResponse:
        return cv.caller_identity(principal())


SPEC = ServiceSpec(
    name="registry",
    descriptor=registry_pb2.DESCRIPTOR.services_by_name["RegistryService"],
    register=registry_pb2_grpc.add_RegistryServiceServicer_to_server,
    make_servicer=lambda runtime: RegistryServicer(runtime.tenancy),
)
