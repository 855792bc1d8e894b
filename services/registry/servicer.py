"""RegistryService: thin servicer over the domain cores (tenancy, and the registry of
skills, policies, deployments and the audit log)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from rlaas.registry.v1 import registry_pb2, registry_pb2_grpc
from services.config import Settings
from services.errors import InvalidArgument
from services.paging import PageTokens
from services.registry import converters as cv
from services.registry.artifacts import ADAPTER_CONFIG, ADAPTER_WEIGHTS, AdapterUpload
from services.registry.service import AuditFilter, RegistryCore
from services.server.interceptors import principal
from services.tenancy.service import TenancyService

_UPLOAD_FILES = {
    registry_pb2.AdapterFileChunk.FILE_CONFIG: ADAPTER_CONFIG,
    registry_pb2.AdapterFileChunk.FILE_WEIGHTS: ADAPTER_WEIGHTS,
}


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(
        self,
        tenancy: TenancyService,
        registry: RegistryCore,
        settings: Settings,
        pages: PageTokens,
    ) -> None:
        self._tenancy = tenancy
        self._pages = pages
        self._registry = registry
        self._settings = settings

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
        page = self._pages.bind(principal().tenant_id, request)
        tenants, token = await self._tenancy.list_tenants(
            principal(), page_size=request.page_size, page_token=page.cursor
        )
        return registry_pb2.ListTenantsResponse(
            tenants=[cv.tenant_to_proto(t) for t in tenants], next_page_token=page.seal(token)
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

    async def UploadAdapter(
        self,
        request_iterator: AsyncIterator[registry_pb2.UploadAdapterRequest],
        context: grpc.aio.ServicerContext,
    ) -> registry_pb2.UploadAdapterResponse:
        upload = AdapterUpload(max_bytes=self._settings.adapter_upload_max_bytes)
        header: registry_pb2.AdapterUploadHeader | None = None
        async for message in request_iterator:
            part = message.WhichOneof("part")
            if header is None:
                if part != "header":
                    raise InvalidArgument.field("header", "the first message must be a header")
                header = message.header
            elif part == "chunk":
                upload.add(_UPLOAD_FILES.get(message.chunk.file, ""), message.chunk.data)
            else:
                raise InvalidArgument.field("chunk", "every message after the header is a chunk")
        if header is None:
            raise InvalidArgument.field("header", "the stream is empty")
        stored = await self._registry.upload_adapter(principal(), upload, sha256=header.sha256)
        return registry_pb2.UploadAdapterResponse(
            adapter=registry_pb2.Adapter(
                artifact_uri=stored.uri,
                sha256=stored.sha256,
                size_bytes=stored.size_bytes,
                rank=stored.rank,
            )
        )

    async def GetApiKey(
        self, request: registry_pb2.GetApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetApiKeyResponse:
        key = await self._tenancy.get_api_key(principal(), request.api_key_id)
        return registry_pb2.GetApiKeyResponse(api_key=cv.api_key_to_proto(key))

    async def ListApiKeys(
        self, request: registry_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListApiKeysResponse:
        page = self._pages.bind(principal().tenant_id, request)
        keys, token = await self._tenancy.list_api_keys(
            principal(),
            page_size=request.page_size,
            page_token=page.cursor,
            show_revoked=request.show_revoked,
        )
        return registry_pb2.ListApiKeysResponse(
            api_keys=[cv.api_key_to_proto(k) for k in keys], next_page_token=page.seal(token)
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

    # ---- skills ---------------------------------------------------------------------

    async def CreateSkill(
        self, request: registry_pb2.CreateSkillRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.CreateSkillResponse:
        skill = await self._registry.create_skill(
            principal(), request.skill, request_id=request.request_id
        )
        return registry_pb2.CreateSkillResponse(skill=skill)

    async def GetSkill(
        self, request: registry_pb2.GetSkillRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetSkillResponse:
        skill = await self._registry.get_skill(principal(), request.skill_id)
        return registry_pb2.GetSkillResponse(skill=skill)

    async def EraseSkillText(
        self, request: registry_pb2.EraseSkillTextRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.EraseSkillTextResponse:
        erased = await self._registry.erase_skill_text(
            principal(), request.skill_id, request_id=request.request_id
        )
        return registry_pb2.EraseSkillTextResponse(
            skill=erased.skill,
            erased_policy_count=erased.policies,
            erased_revision_count=erased.revisions,
            erased_audit_event_count=erased.audit_events,
            kept_audit_event_count=erased.kept_audit_events,
        )

    async def ListSkills(
        self, request: registry_pb2.ListSkillsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListSkillsResponse:
        page = self._pages.bind(principal().tenant_id, request)
        skills, token = await self._registry.list_skills(
            principal(), page_size=request.page_size, page_token=page.cursor
        )
        return registry_pb2.ListSkillsResponse(skills=skills, next_page_token=page.seal(token))

    # ---- policies -------------------------------------------------------------------

    async def CreatePolicy(
        self, request: registry_pb2.CreatePolicyRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.CreatePolicyResponse:
        policy = await self._registry.create_policy(
            principal(), request.policy, request_id=request.request_id
        )
        return registry_pb2.CreatePolicyResponse(policy=policy)

    async def GetPolicy(
        self, request: registry_pb2.GetPolicyRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetPolicyResponse:
        policy = await self._registry.get_policy(principal(), request.policy_id)
        return registry_pb2.GetPolicyResponse(policy=policy)

    async def ListPolicies(
        self, request: registry_pb2.ListPoliciesRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListPoliciesResponse:
        page = self._pages.bind(principal().tenant_id, request)
        policies, token = await self._registry.list_policies(
            principal(),
            page_size=request.page_size,
            page_token=page.cursor,
            skill_id=request.skill_id,
            state=cv.policy_state_from_proto(request.state),
        )
        return registry_pb2.ListPoliciesResponse(
            policies=policies, next_page_token=page.seal(token)
        )

    async def DiffPolicies(
        self, request: registry_pb2.DiffPoliciesRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.DiffPoliciesResponse:
        diff = await self._registry.diff_policies(
            principal(), request.base_policy_id, request.target_policy_id
        )
        return registry_pb2.DiffPoliciesResponse(
            changes=[
                registry_pb2.PolicyFieldChange(
                    field_path=c.field_path,
                    before=cv.json_value(c.before),
                    after=cv.json_value(c.after),
                )
                for c in diff.changes
            ],
            prompt_diff=diff.prompt_diff,
            identical=diff.identical,
        )

    # ---- deployments ----------------------------------------------------------------

    async def GetDeployment(
        self, request: registry_pb2.GetDeploymentRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetDeploymentResponse:
        deployment = await self._registry.get_deployment(principal(), request.skill_id)
        return registry_pb2.GetDeploymentResponse(deployment=deployment)

    async def ListDeployments(
        self, request: registry_pb2.ListDeploymentsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListDeploymentsResponse:
        page = self._pages.bind(principal().tenant_id, request)
        deployments, token = await self._registry.list_deployments(
            principal(), page_size=request.page_size, page_token=page.cursor
        )
        return registry_pb2.ListDeploymentsResponse(
            deployments=deployments, next_page_token=page.seal(token)
        )

    async def SetTraffic(
        self, request: registry_pb2.SetTrafficRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.SetTrafficResponse:
        deployment = await self._registry.set_traffic(
            principal(),
            request.skill_id,
            request.traffic,
            reason=request.reason,
            expected_revision=request.expected_revision,
            request_id=request.request_id,
        )
        return registry_pb2.SetTrafficResponse(deployment=deployment)

    async def PromotePolicy(
        self, request: registry_pb2.PromotePolicyRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.PromotePolicyResponse:
        deployment, policy = await self._registry.promote_policy(
            principal(),
            request.skill_id,
            request.policy_id,
            reason=request.reason,
            expected_revision=request.expected_revision,
            request_id=request.request_id,
        )
        return registry_pb2.PromotePolicyResponse(deployment=deployment, policy=policy)

    async def RollbackDeployment(
        self,
        request: registry_pb2.RollbackDeploymentRequest,
        context: grpc.aio.ServicerContext,
    ) -> registry_pb2.RollbackDeploymentResponse:
        deployment = await self._registry.rollback_deployment(
            principal(),
            request.skill_id,
            to_revision=request.to_revision,
            reason=request.reason,
            expected_revision=request.expected_revision,
            request_id=request.request_id,
        )
        return registry_pb2.RollbackDeploymentResponse(deployment=deployment)

    # ---- audit log ------------------------------------------------------------------

    async def ListAuditEvents(
        self, request: registry_pb2.ListAuditEventsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListAuditEventsResponse:
        page = self._pages.bind(principal().tenant_id, request)
        rows, token = await self._registry.list_audit_events(
            principal(),
            page_size=request.page_size,
            page_token=page.cursor,
            where=AuditFilter(
                resource_type=request.resource_type,
                resource_id=request.resource_id,
                action=request.action,
                actor_api_key_id=request.actor_api_key_id,
                start_time=cv.optional_datetime(request, "start_time"),
                end_time=cv.optional_datetime(request, "end_time"),
            ),
        )
        return registry_pb2.ListAuditEventsResponse(
            audit_events=[cv.audit_event_to_proto(r) for r in rows],
            next_page_token=page.seal(token),
        )

    async def EraseAuditEvents(
        self, request: registry_pb2.EraseAuditEventsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.EraseAuditEventsResponse:
        rows = await self._registry.erase_audit_events(
            principal(), list(request.audit_event_ids), request_id=request.request_id
        )
        return registry_pb2.EraseAuditEventsResponse(
            audit_events=[cv.audit_event_to_proto(r) for r in rows]
        )

    async def VerifyAuditLog(
        self, request: registry_pb2.VerifyAuditLogRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.VerifyAuditLogResponse:
        verdict = await self._registry.verify_audit_log(
            principal(), from_sequence=request.from_sequence, to_sequence=request.to_sequence
        )
        return registry_pb2.VerifyAuditLogResponse(
            valid=verdict.valid,
            checked_count=verdict.checked_count,
            first_invalid_sequence=verdict.first_invalid_sequence,
            head_hash=verdict.head_hash,
            detail=verdict.detail,
        )
