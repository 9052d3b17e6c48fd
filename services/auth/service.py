"""The auth domain: accounts, logins, token rotation and revocation. No HTTP types here."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

from services.auth.config import VERIFIER_LEEWAY_SECONDS, AuthSettings
from services.auth.keys import KeyRing
from services.auth.passwords import PasswordHashing
from services.auth.repository import AuthRepository, RefreshOutcome, UserRecord
from services.auth.schemas import PASSWORD_MAX, PASSWORD_MIN, USERNAME_PATTERN
from services.auth.throttle import LoginThrottle
from services.auth.tokens import (
    hash_refresh_token,
    new_refresh_token,
    sign_access_token,
    signed_session_id,
)
from shared.errors import Conflict, ProblemError, Unauthorized, Unprocessable
from shared.jwks import revoked_session_key

logger = logging.getLogger(__name__)

_USERNAME = re.compile(USERNAME_PATTERN)


class InvalidGrant(ProblemError):
    """Wrong credentials, or a refresh token that is unknown, used, expired or revoked.

    401 as the API contract says (OAuth 2.0 itself would answer 400), with the OAuth error code.
    """

    status = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, error="invalid_grant")


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


def valid_username(username: str) -> bool:
    return _USERNAME.fullmatch(username) is not None


def check_new_credentials(username: str, password: str) -> None:
    """The rules of POST /auth/users, for callers that do not go through its schema (the CLI)."""
    if not valid_username(username):
        raise Unprocessable("username: 3–32 characters of a-z, 0-9, '_', '.', '-'")
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise Unprocessable(f"password: {PASSWORD_MIN}–{PASSWORD_MAX} characters")


class AuthService:
    def __init__(
        self,
        *,
        settings: AuthSettings,
        repo: AuthRepository,
        redis: Redis,
        keys: KeyRing,
        hashing: PasswordHashing,
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.redis = redis
        self.keys = keys
        self.hashing = hashing
        self.throttle = LoginThrottle(redis, settings)

    async def register(
        self, *, username: str, password: str, roles: tuple[str, ...] = ()
    ) -> UserRecord:
        check_new_credentials(username, password)
        # Fail fast on a taken name before paying for a hash; the insert still decides races.
        if await self.repo.user_by_name(username=username) is not None:
            raise Conflict(f"The username {username!r} is taken")
        password_hash = await self.hashing.hash(password)
        user = await self.repo.insert_user(
            username=username, password_hash=password_hash, roles=list(roles)
        )
        if user is None:
            raise Conflict(f"The username {username!r} is taken")
        logger.info("user %s created (id %d)", user.username, user.id)
        return user

    async def login(self, *, username: str, password: str, client_ip: str) -> IssuedTokens:
        plausible = valid_username(username) and PASSWORD_MIN <= len(password) <= PASSWORD_MAX
        await self.throttle.attempt(
            username=username if valid_username(username) else None, client_ip=client_ip
        )
        user = await self.repo.user_by_name(username=username) if plausible else None
        # An unknown name costs a hash check too, so timing does not reveal which names exist.
        matches = await self.hashing.verify(
            user.password_hash if user else None, password[:PASSWORD_MAX]
        )
        if user is None or not matches:
            raise InvalidGrant("Wrong username or password")
        await self.throttle.succeeded(username=username, client_ip=client_ip)
        if self.hashing.needs_rehash(user.password_hash):
            rehashed = await self.hashing.hash(password)
            await self.repo.update_password_hash(user_id=user.id, password_hash=rehashed)
        session_id = uuid.uuid4()
        refresh_token, refresh_hash = new_refresh_token()
        await self.repo.start_login(
            session_id=session_id,
            user_id=user.id,
            token_hash=refresh_hash,
            ttl_seconds=self.settings.refresh_token_ttl_seconds,
        )
        return await self._issue(user, session_id, refresh_token)

    async def refresh(self, *, refresh_token: str) -> IssuedTokens:
        new_token, new_hash = new_refresh_token()
        result = await self.repo.rotate_refresh_token(
            token_hash=hash_refresh_token(refresh_token),
            new_token_hash=new_hash,
            ttl_seconds=self.settings.refresh_token_ttl_seconds,
        )
        if result.outcome is RefreshOutcome.REUSED:
            assert result.session_id is not None
            logger.warning("refresh token reused: login %s revoked", result.session_id)
            await self._mark_revoked(result.session_id)
            raise InvalidGrant("The refresh token was already used; the login is revoked")
        if result.outcome is not RefreshOutcome.ROTATED:
            raise InvalidGrant(f"The refresh token is {result.outcome.value}")
        assert result.session_id is not None
        assert result.user_id is not None
        user = await self.repo.user_by_id(user_id=result.user_id)
        if user is None:
            raise InvalidGrant("The refresh token's user no longer exists")
        return await self._issue(user, result.session_id, new_token)

    async def revoke(self, *, token: str) -> None:
        """End the login a refresh or access token belongs to; an unknown token is no error."""
        session_id = await self.repo.session_of_refresh_token(token_hash=hash_refresh_token(token))
        if session_id is None and token.count(".") == 2:
            session_id = signed_session_id(token, await self.keys.public_key_set())
        if session_id is None:
            return
        if await self.repo.revoke_session(session_id=session_id, reason="revoked"):
            await self._mark_revoked(session_id)
            logger.info("login %s revoked", session_id)

    async def user(self, *, user_id: str) -> UserRecord:
        user = await self.repo.user_by_id(user_id=int(user_id)) if user_id.isdigit() else None
        if user is None:
            raise Unauthorized("The token's user no longer exists")
        return user

    async def _issue(
        self, user: UserRecord, session_id: uuid.UUID, refresh_token: str
    ) -> IssuedTokens:
        access_token = sign_access_token(
            await self.keys.signing_key(),
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            user_id=user.id,
            username=user.username,
            roles=user.roles,
            session_id=session_id,
            ttl_seconds=self.settings.access_token_ttl_seconds,
        )
        return IssuedTokens(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=self.settings.access_token_ttl_seconds,
        )

    async def _mark_revoked(self, session_id: uuid.UUID) -> None:
        """Tell every verifier (shared.deps.CurrentUser) that the login's access tokens are void,
        for as long as any of them can still be presented."""
        await self.redis.set(
            revoked_session_key(self.settings.namespace, str(session_id)),
            b"1",
            ex=self.settings.access_token_ttl_seconds + VERIFIER_LEEWAY_SECONDS,
        )
