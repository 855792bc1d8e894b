"""Tenants and API keys: the domain core behind RegistryService's auth RPCs and the
auth interceptor. Knows nothing of gRPC."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.db import idempotency
from services.db.models import ApiKey, Tenant
from services.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)
from services.paging import next_page_token, page_request
from services.server_secret import derive_key
from services.tenancy import keys
from services.tenancy.principal import Principal, Scope

REPLAY_WINDOW = timedelta(hours=24)
"""How long a retried create (same request_id) is answered with the key's secret."""

log = structlog.get_logger(__name__)

ACTIVE = "active"
REVOKED = "revoked"
DISABLED = "disabled"
MAX_DISPLAY_NAME = 200


@dataclass(frozen=True, slots=True)
class CreatedKey:
    api_key: ApiKey
    secret: str


@dataclass(frozen=True, slots=True)
class CreatedTenant:
    tenant: Tenant
    admin_key: CreatedKey


def _now() -> datetime:
    return datetime.now(UTC)


def _display_name(value: str, field: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument.field(field, "is required")
    if len(value) > MAX_DISPLAY_NAME:
        raise InvalidArgument.field(field, f"must be at most {MAX_DISPLAY_NAME} characters")
    return value


def _scopes(values: Iterable[Scope], field: str) -> list[str]:
    unique = sorted({s.value for s in values})
    if not unique:
        raise InvalidArgument.field(field, "must name at least one scope")
    return unique


class TenancyService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        cache_ttl_s: float = 5.0,
        server_secret: bytes | None = None,
    ) -> None:
        """``server_secret``: derives the secrets of the keys CreateApiKey and
        CreateTenant make; without it this instance only authenticates and bootstraps."""
        self._sessions = sessions
        self._ttl = cache_ttl_s
        self._key_derivation = (
            derive_key(server_secret, "api-key/v1") if server_secret is not None else None
        )
        # sha256(token) -> (principal, monotonic expiry). Bounded by the number of
        # distinct valid keys presented, since only verified keys are cached.
        self._cache: dict[bytes, tuple[Principal, float]] = {}

    # ---- authentication --------------------------------------------------------

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthenticated(
                "missing API key: send 'authorization: Bearer <key>'", reason="API_KEY_MISSING"
            )
        key_id = keys.parse_key_id(token)
        digest = keys.hash_secret(token)
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]

        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(ApiKey, Tenant)
                    .join(Tenant, Tenant.tenant_id == ApiKey.tenant_id)
                    .where(ApiKey.api_key_id == key_id)
                )
            ).first()
            if row is None or not keys.matches(token, row.ApiKey.secret_hash):
                raise Unauthenticated("unknown API key", reason="API_KEY_INVALID")
            key, tenant = row.ApiKey, row.Tenant
            if key.state != ACTIVE:
                raise Unauthenticated("API key has been revoked", reason="API_KEY_REVOKED")
            if key.expire_time is not None and key.expire_time <= _now():
                raise Unauthenticated("API key has expired", reason="API_KEY_EXPIRED")
            if tenant.state != ACTIVE:
                raise Unauthenticated("tenant is disabled", reason="TENANT_DISABLED")
            if key.first_use_time is None:
                await session.execute(
                    update(ApiKey)
                    .where(ApiKey.api_key_id == key_id, ApiKey.first_use_time.is_(None))
                    .values(first_use_time=_now())
                )
                await session.commit()

        principal = Principal(
            tenant_id=tenant.tenant_id,
            api_key_id=key.api_key_id,
            scopes=frozenset(Scope(s) for s in key.scopes),
            operator=tenant.operator,
        )
        if self._ttl > 0:
            lifetime = self._ttl
            if key.expire_time is not None:
                # Never serve a key from cache past its own expiry.
                lifetime = min(lifetime, (key.expire_time - _now()).total_seconds())
            self._cache[digest] = (principal, time.monotonic() + lifetime)
        return principal

    def _forget_key(self, api_key_id: str) -> None:
        for digest, (principal, _) in list(self._cache.items()):
            if principal.api_key_id == api_key_id:
                del self._cache[digest]

    # ---- tenants ---------------------------------------------------------------

    async def create_tenant(
        self, caller: Principal, *, display_name: str, request_id: str
    ) -> CreatedTenant:
        caller.require_operator()
        name = _display_name(display_name, "tenant.display_name")
        tenant_id = f"t-{secrets.token_hex(6)}"
        idempotency.validate_request_id(request_id)
        async with self._sessions() as session, session.begin():
            prior = await idempotency.claim(
                session,
                tenant_id=caller.tenant_id,
                method="CreateTenant",
                request_id=request_id,
                payload={"display_name": name},
                resource_id=tenant_id,
            )
            context = ("CreateTenant", caller.tenant_id, request_id)
            if prior is not None:
                return await self._replay_tenant(session, prior, context)
            tenant = Tenant(tenant_id=tenant_id, display_name=name, state=ACTIVE, operator=False)
            session.add(tenant)
            await session.flush()
            admin = await self._insert_key(
                session, tenant_id, f"{name} admin", [Scope.ADMIN.value], None,
                *self._new_derived(context),
            )  # fmt: skip
            await self._erase_old_salts(session)
            await session.refresh(tenant)
        log.info("tenant_created", tenant_id=tenant_id, by=caller.api_key_id)
        return CreatedTenant(tenant, admin)

    async def _replay_tenant(
        self, session: AsyncSession, tenant_id: str, context: tuple[str, ...]
    ) -> CreatedTenant:
        tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None
        # The admin key was made in the tenant's own transaction: its first key.
        first_key = await session.scalar(
            select(ApiKey)
            .where(ApiKey.tenant_id == tenant_id)
            .order_by(ApiKey.create_time, ApiKey.api_key_id)
        )
        assert first_key is not None
        return CreatedTenant(tenant, self._replayed_key(first_key, context))

    async def get_tenant(self, caller: Principal, tenant_id: str) -> Tenant:
        caller.require_operator()
        async with self._sessions() as session:
            tenant = await session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("tenant", tenant_id)
        return tenant

    async def list_tenants(
        self, caller: Principal, *, page_size: int, page_token: str
    ) -> tuple[list[Tenant], str]:
        caller.require_operator()
        page = page_request(page_size, page_token)
        query = select(Tenant).order_by(Tenant.tenant_id).limit(page.size + 1)
        if page.after:
            query = query.where(Tenant.tenant_id > page.after[0])
        async with self._sessions() as session:
            items = list((await session.scalars(query)).all())
        return items[: page.size], next_page_token(items, page.size, lambda t: [t.tenant_id])

    async def bootstrap_operator(
        self, *, display_name: str = "operator", preset_token: str | None = None
    ) -> tuple[Tenant, CreatedKey | None]:
        """Create the operator tenant and its admin key once.

        Returns the new key (with its secret, to show once) on first run, or None when
        the operator already exists. ``preset_token`` installs a key the operator chose
        (e.g. from ``RLAAS_BOOTSTRAP_ADMIN_KEY``) instead of a random one.
        """
        async with self._sessions() as session, session.begin():
            existing = await session.scalar(select(Tenant).where(Tenant.operator.is_(True)))
            if existing is not None:
                if preset_token is not None:
                    await self._ensure_preset_key(session, existing.tenant_id, preset_token)
                return existing, None
            tenant = Tenant(
                tenant_id="operator", display_name=display_name, state=ACTIVE, operator=True
            )
            session.add(tenant)
            await session.flush()
            if preset_token is not None:
                created = await self._ensure_preset_key(session, tenant.tenant_id, preset_token)
            else:
                created = await self._insert_key(
                    session, tenant.tenant_id, "bootstrap admin", [Scope.ADMIN.value], None
                )
            await session.refresh(tenant)
        return tenant, created

    async def _ensure_preset_key(
        self, session: AsyncSession, tenant_id: str, token: str
    ) -> CreatedKey:
        key_id = keys.parse_key_id(token)
        key = await session.get(ApiKey, key_id)
        if key is None:
            key = ApiKey(
                api_key_id=key_id,
                tenant_id=tenant_id,
                display_name="bootstrap admin (preset)",
                secret_hash=keys.hash_secret(token),
                scopes=[Scope.ADMIN.value],
                state=ACTIVE,
            )
            session.add(key)
            await session.flush()
            await session.refresh(key)
        elif not keys.matches(token, key.secret_hash) or key.tenant_id != tenant_id:
            raise FailedPrecondition(
                "RLAAS_BOOTSTRAP_ADMIN_KEY collides with another key id", reason="KEY_ID_TAKEN"
            )
        return CreatedKey(key, token)

    # ---- API keys --------------------------------------------------------------

    async def _insert_key(
        self,
        session: AsyncSession,
        tenant_id: str,
        display_name: str,
        scopes: list[str],
        expire_time: datetime | None,
        issued: keys.IssuedKey | None = None,
        salt: str | None = None,
    ) -> CreatedKey:
        issued = issued or keys.issue()
        key = ApiKey(
            secret_salt=salt,
            api_key_id=issued.api_key_id,
            tenant_id=tenant_id,
            display_name=display_name,
            secret_hash=issued.secret_hash,
            scopes=scopes,
            state=ACTIVE,
            expire_time=expire_time,
        )
        session.add(key)
        await session.flush()
        await session.refresh(key)
        return CreatedKey(key, issued.secret)

    # A retried create must return the secret it issued (AIP-155: the original result),
    # and concurrent duplicates must all get the one that works; yet only the hash may
    # be stored. The secret is derived: HMAC(subkey of the server secret, key id +
    # method + tenant + request_id + a random salt kept on the key row). A duplicate that
    # loses the claim race reads the winner's row and computes the same value. The salt
    # is erased once the replay window has passed: from then on nobody, not even with
    # the server secret and a copy of the database, can recompute the secret, which
    # then exists only where it was handed out. Within the window whoever holds both
    # could, as with any copy kept for replays; a tenant admin who knows a request_id
    # can read that key's secret again, which it could already replace.
    def _derived(self, api_key_id: str, context: tuple[str, ...], salt: str) -> keys.IssuedKey:
        if self._key_derivation is None:
            raise RuntimeError("this TenancyService was made without the server secret")
        return keys.derive(self._key_derivation, api_key_id, *context, salt)

    def _new_derived(
        self, context: tuple[str, ...], api_key_id: str | None = None
    ) -> tuple[keys.IssuedKey, str]:
        salt = secrets.token_hex(16)
        return self._derived(api_key_id or keys.new_key_id(), context, salt), salt

    def _replayed_key(self, key: ApiKey, context: tuple[str, ...]) -> CreatedKey:
        """The key a create made, with the secret it was issued with."""
        fresh = key.create_time is not None and _now() - key.create_time < REPLAY_WINDOW
        issued = (
            self._derived(key.api_key_id, context, key.secret_salt)
            if key.secret_salt and fresh
            else None
        )
        if issued is None or not keys.matches(issued.secret, key.secret_hash):
            # Past the window (salt erased) or the server secret changed: gone for good.
            raise FailedPrecondition(
                f"API key {key.api_key_id}'s secret can no longer be shown (a retry is "
                f"answered with it for {REPLAY_WINDOW} after creation); revoke it and "
                "create a new one",
                reason="API_KEY_SECRET_UNAVAILABLE",
            )
        return CreatedKey(key, issued.secret)

    @staticmethod
    async def _erase_old_salts(session: AsyncSession) -> None:
        """Forget the salts of keys past the replay window (every create sweeps)."""
        await session.execute(
            update(ApiKey)
            .where(ApiKey.secret_salt.is_not(None), ApiKey.create_time < _now() - REPLAY_WINDOW)
            .values(secret_salt=None)
        )

    async def create_api_key(
        self,
        caller: Principal,
        *,
        display_name: str,
        scopes: Iterable[Scope],
        expire_time: datetime | None = None,
        request_id: str,
    ) -> CreatedKey:
        caller.require(Scope.ADMIN)
        name = _display_name(display_name, "api_key.display_name")
        scope_values = _scopes(scopes, "api_key.scopes")
        if expire_time is not None and expire_time <= _now():
            raise InvalidArgument.field("api_key.expire_time", "must be in the future")
        idempotency.validate_request_id(request_id)
        key_id = keys.new_key_id()
        context = ("CreateApiKey", caller.tenant_id, request_id)
        async with self._sessions() as session, session.begin():
            prior = await idempotency.claim(
                session,
                tenant_id=caller.tenant_id,
                method="CreateApiKey",
                request_id=request_id,
                payload={"name": name, "scopes": scope_values, "expire": expire_time},
                resource_id=key_id,
            )
            if prior is not None:
                key = await session.get(ApiKey, prior)
                assert key is not None
                return self._replayed_key(key, context)
            issued, salt = self._new_derived(context, key_id)
            created = await self._insert_key(
                session, caller.tenant_id, name, scope_values, expire_time, issued, salt
            )
            await self._erase_old_salts(session)
        log.info("api_key_created", api_key_id=key_id, scopes=scope_values, by=caller.api_key_id)
        return created

    async def _own_key(self, session: AsyncSession, caller: Principal, api_key_id: str) -> ApiKey:
        key = await session.get(ApiKey, api_key_id)
        # Another tenant's key is reported exactly like a missing one.
        if key is None or key.tenant_id != caller.tenant_id:
            raise NotFound("api key", api_key_id)
        return key

    async def get_api_key(self, caller: Principal, api_key_id: str) -> ApiKey:
        caller.require(Scope.ADMIN)
        async with self._sessions() as session:
            return await self._own_key(session, caller, api_key_id)

    async def list_api_keys(
        self, caller: Principal, *, page_size: int, page_token: str, show_revoked: bool
    ) -> tuple[list[ApiKey], str]:
        caller.require(Scope.ADMIN)
        page = page_request(page_size, page_token)
        query = (
            select(ApiKey)
            .where(ApiKey.tenant_id == caller.tenant_id)
            .order_by(ApiKey.create_time, ApiKey.api_key_id)
            .limit(page.size + 1)
        )
        if not show_revoked:
            query = query.where(ApiKey.state == ACTIVE)
        if page.after:
            after_time = datetime.fromisoformat(page.after[0])
            query = query.where(
                or_(
                    ApiKey.create_time > after_time,
                    and_(ApiKey.create_time == after_time, ApiKey.api_key_id > page.after[1]),
                )
            )
        async with self._sessions() as session:
            items = list((await session.scalars(query)).all())
        token = next_page_token(
            items, page.size, lambda k: [k.create_time.isoformat(), k.api_key_id]
        )
        return items[: page.size], token

    async def revoke_api_key(
        self, caller: Principal, api_key_id: str, *, request_id: str
    ) -> ApiKey:
        """Revoke a key. Revoking a revoked key returns it unchanged, so a retry is
        harmless. The tenant's last active admin key cannot be revoked (it would lock
        the tenant out of its own key management)."""
        caller.require(Scope.ADMIN)
        if not api_key_id:
            raise InvalidArgument.field("api_key_id", "is required")
        idempotency.validate_request_id(request_id)
        async with self._sessions() as session, session.begin():
            # Lock the tenant's active admin keys so two concurrent revocations cannot
            # both see "another admin key remains".
            admins = (
                await session.scalars(
                    select(ApiKey.api_key_id)
                    .where(
                        ApiKey.tenant_id == caller.tenant_id,
                        ApiKey.state == ACTIVE,
                        ApiKey.scopes.contains([Scope.ADMIN.value]),
                    )
                    .with_for_update()
                )
            ).all()
            key = await self._own_key(session, caller, api_key_id)
            await idempotency.claim(
                session,
                tenant_id=caller.tenant_id,
                method="RevokeApiKey",
                request_id=request_id,
                payload={"api_key_id": api_key_id},
                resource_id=api_key_id,
            )
            if key.state != REVOKED:
                if list(admins) == [api_key_id]:
                    raise FailedPrecondition(
                        f"API key {api_key_id} is the tenant's last active admin key; "
                        "create another admin key first",
                        reason="LAST_ADMIN_KEY",
                    )
                key.state = REVOKED
                key.revoke_time = _now()
        self._forget_key(api_key_id)
        log.info("api_key_revoked", api_key_id=api_key_id, by=caller.api_key_id)
        return key
