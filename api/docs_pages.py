"""The schema's pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), with every script and style
they load served by the API itself: a store box and CI have no internet, and FastAPI's own
pages take theirs from a CDN (and a favicon and web fonts from elsewhere).

The files are those the fastapi-offline package carries (Swagger UI 5 and ReDoc 2, which
render OpenAPI 3.1, as FastAPI writes it), a dependency rather than a copy in this
repository, mounted read-only at `/docs-assets`. The pages name nothing else: no favicon or
font from outside, no OAuth2 redirect page (tokens are bearer tokens, typed into Authorize).
And what the scripts would fetch by themselves is refused by the browser: both pages carry a
Content-Security-Policy of this server only (ReDoc's script asks its maker's CDN for a logo,
and hides it when refused). Like the schema, the pages and their files need no token.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"
FAVICON = "favicon.png"
# What the browser may load for the pages: from this server only (ReDoc's script would ask a
# CDN for its logo otherwise; it hides the logo when refused). Swagger UI's page starts it
# with an inline script, ReDoc styles itself inline and searches in a blob: worker.
POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
    )
)


def assets_dir() -> Path:
    """Where the installed fastapi-offline package keeps Swagger UI's and ReDoc's files."""
    return Path(str(files("fastapi_offline") / "static"))


def confined(page: HTMLResponse) -> HTMLResponse:
    """The page, with the policy that keeps the browser on this server."""
    page.headers["Content-Security-Policy"] = POLICY
    return page


def add_docs_pages(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve the two pages of the app's schema and their files (the app is made with
    `docs_url=None, redoc_url=None`, so that FastAPI's own CDN pages are not added)."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{name}"

    def schema_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return confined(
            get_swagger_ui_html(
                openapi_url=schema_url(request),
                title=f"{app.title} - Swagger UI",
                swagger_js_url=asset(request, SWAGGER_JS),
                swagger_css_url=asset(request, SWAGGER_CSS),
                swagger_favicon_url=asset(request, FAVICON),
                oauth2_redirect_url=None,
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get(redoc_url, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return confined(
            get_redoc_html(
                openapi_url=schema_url(request),
                title=f"{app.title} - ReDoc",
                redoc_js_url=asset(request, REDOC_JS),
                redoc_favicon_url=asset(request, FAVICON),
                with_google_fonts=False,
            )
        )
