"""Single sign-on with the chain's identity provider (OpenID Connect, authorization code
flow with PKCE), when `sso_issuer`, `sso_client_id` and `sso_client_secret` are set.

The provider proves who someone is; Shrinkwatch still decides what they may do: the ID
token's email must belong to an enabled account (`shrinkwatch users add NAME --role ...
--email ... --sso-only`), whose role and stores apply as with a password. Then the same
server-side session and cookie as a password sign-in (streamlit_app.server).

What is checked: the `state` we sent comes back once, within ten minutes (kept in
PostgreSQL, `sso_requests`); the code is exchanged with our PKCE verifier and client
secret; the ID token is signed by a key of the provider's JWKS, and its issuer, audience,
expiry and nonce are ours; the provider says the email is verified (`email_verified` true:
an email a user could type in themselves proves nothing); and the browser that comes back
is the one that left (the state is also in its cookie, so nobody can hand someone else the
return link of their own sign-in).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from shrinkwatch.errors import ShrinkwatchError
from shrinkwatch.placeholders import UnsetVariable
from shrinkwatch.settings import Settings

TIMEOUT_S = 10
log = logging.getLogger(__name__)


class SsoError(ShrinkwatchError):
    """A single sign-on that did not succeed; the message can be shown as it is."""


@dataclass(frozen=True)
class Provider:
    """The identity provider's endpoints, from its discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def enabled(settings: Settings) -> bool:
    return bool(settings.sso_issuer and settings.sso_client_id and settings.sso_client_secret)


def discover(issuer: str) -> Provider:
    """Read the provider's `/.well-known/openid-configuration`."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        document = requests.get(url, timeout=TIMEOUT_S).json()
        return Provider(
            issuer=document["issuer"],
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            jwks_uri=document["jwks_uri"],
        )
    except (requests.RequestException, ValueError, KeyError) as exc:
        msg = f"the identity provider at {issuer} did not answer its discovery document: {exc}"
        raise SsoError(msg) from None


def _client(settings: Settings, redirect_uri: str) -> OAuth2Session:
    try:
        secret = settings.secret("sso_client_secret")  # its ${VAR} read now, kept nowhere
    except UnsetVariable as exc:
        log.error("single sign-on: %s", exc)  # for the operator; the browser is told less
        msg = "single sign-on is not set up on this server (its log says why)"
        raise SsoError(msg) from None
    return OAuth2Session(
        client_id=settings.sso_client_id,
        client_secret=secret,
        scope="openid email profile",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and what to remember until it comes back."""

    url: str
    state: str
    nonce: str
    code_verifier: str


def start(settings: Settings, redirect_uri: str) -> Started:
    """The provider's sign-in address for a new attempt."""
    provider = discover(str(settings.sso_issuer))
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), generate_token(64)
    url, _ = _client(settings, redirect_uri).create_authorization_url(
        provider.authorization_endpoint, state=state, nonce=nonce, code_verifier=verifier
    )
    return Started(url, state, nonce, verifier)


def finish(settings: Settings, redirect_uri: str, code: str, nonce: str, code_verifier: str) -> str:
    """Exchange the code, check the ID token, and return the signed-in person's email."""
    provider = discover(str(settings.sso_issuer))
    try:
        token: dict[str, Any] = _client(settings, redirect_uri).fetch_token(
            provider.token_endpoint, code=code, code_verifier=code_verifier, timeout=TIMEOUT_S
        )
    except Exception as exc:  # Authlib raises its own OAuth errors and requests' errors
        msg = f"the identity provider refused the sign-in code: {exc}"
        raise SsoError(msg) from None
    id_token = token.get("id_token")
    if not id_token:
        msg = "the identity provider sent no ID token"
        raise SsoError(msg)
    try:
        keys = KeySet.import_key_set(requests.get(provider.jwks_uri, timeout=TIMEOUT_S).json())
        decoded = jwt.decode(id_token, keys, algorithms=["RS256", "ES256", "PS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": str(settings.sso_client_id)},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(decoded.claims)
    except (JoseError, requests.RequestException, ValueError) as exc:
        msg = f"the identity provider's ID token did not check out: {exc}"
        raise SsoError(msg) from None
    claims = decoded.claims
    email = claims.get("email")
    if not email:
        msg = "the identity provider did not say who you are (no email in the ID token)"
        raise SsoError(msg)
    if claims.get("email_verified") is not True:  # absent, false or "false": not proven
        msg = f"the identity provider has not verified {email}"
        raise SsoError(msg)
    return str(email)
