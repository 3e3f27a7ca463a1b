"""A local OpenID Connect provider for the single sign-on tests: it speaks the protocol a
chain's (paid) identity provider speaks: discovery, authorization code with PKCE, a token
endpoint that checks the client secret and the verifier, RS256 ID tokens and their JWKS.
It signs in whoever `email` names, without asking."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support import QuietHandler, serving

CLIENT_ID, CLIENT_SECRET = "shrinkwatch-dashboard", "a-client-secret"


@dataclass
class Provider:
    """What the provider does next; tests change it."""

    url: str = ""
    email: str = "ana@example.com"
    email_verified: bool | None = True  # None: the claim is left out
    wrong_nonce: bool = False
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, auto_kid=True))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/.well-known/openid-configuration":
                self.send_json(
                    200,
                    {
                        "issuer": provider.url,
                        "authorization_endpoint": f"{provider.url}/authorize",
                        "token_endpoint": f"{provider.url}/token",
                        "jwks_uri": f"{provider.url}/jwks",
                        "response_types_supported": ["code"],
                        "code_challenge_methods_supported": ["S256"],
                    },
                )
            elif parts.path == "/jwks":
                self.send_json(200, {"keys": [provider.key.as_dict(private=False)]})
            elif parts.path == "/authorize":
                if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
                    self.send_json(400, {"error": "invalid_request"})
                    return
                code = secrets.token_urlsafe(16)
                provider.codes[code] = query
                target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()
            else:
                self.send_json(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802
            if urlsplit(self.path).path != "/token":
                self.send_json(404, {"error": "not_found"})
                return
            form = {
                k: v[0]
                for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()
            }
            basic = self.headers.get("Authorization", "")
            client = (
                base64.b64decode(basic.removeprefix("Basic ")).decode() if basic.startswith("Basic ") else ""
            )
            if client != f"{CLIENT_ID}:{CLIENT_SECRET}" and (
                form.get("client_id"),
                form.get("client_secret"),
            ) != (CLIENT_ID, CLIENT_SECRET):
                self.send_json(401, {"error": "invalid_client"})
                return
            asked = provider.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            )
            if (
                asked is None
                or asked["redirect_uri"] != form.get("redirect_uri")
                or asked["code_challenge"] != challenge
            ):
                self.send_json(400, {"error": "invalid_grant"})
                return
            now = int(time.time())
            claims = {
                "iss": provider.url,
                "aud": CLIENT_ID,
                "sub": provider.email,
                "email": provider.email,
                "nonce": "not-the-nonce" if provider.wrong_nonce else asked["nonce"],
                "iat": now,
                "exp": now + 300,
            }
            if provider.email_verified is not None:
                claims["email_verified"] = provider.email_verified
            id_token = jwt.encode({"alg": "RS256", "kid": provider.key.kid}, claims, provider.key)
            self.send_json(
                200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": id_token}
            )

    return Handler


@contextmanager
def running_provider() -> Iterator[Provider]:
    """The provider on a free port of 127.0.0.1, for the block."""
    provider = Provider()
    with serving(_handler(provider)) as provider.url:
        yield provider
