"""`/docs` without a CDN: Swagger UI's script, stylesheet and icon are served by Switchboard
itself from the `swagger-ui-py` package's copy of swagger-ui-dist (5.x, which reads OpenAPI 3.1,
the version FastAPI writes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html

ASSETS = {
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
PREFIX = "/docs/static"


def swagger_dir() -> Path | None:
    """The folder of swagger-ui-dist's files in the swagger-ui-py package (not imported: only its
    data is read), or None when the package is not installed."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def add_docs(app: FastAPI, openapi_url: str = "/openapi.json", title: str = "Switchboard") -> None:
    """GET /docs, /docs/oauth2-redirect and /docs/static/<asset> (create the app with docs_url=None)."""
    folder = swagger_dir()
    cache: dict[str, bytes] = {}

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - API",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect():
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(PREFIX + "/{name}", include_in_schema=False)
    async def asset(name: str):
        if name not in ASSETS or folder is None:
            return Response("not found", 404, media_type="text/plain")
        if name not in cache:
            cache[name] = (folder / name).read_bytes()
        return Response(cache[name], media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400"})
