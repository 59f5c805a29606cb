"""The dashboard's web app (Starlette): the page, the JSON API and the event stream.

    GET /                              the page (plain HTML/JS, package data)
    GET /api/health                    status, uptime, per-camera health, hook counters
    GET /api/cameras                   per-camera state (fps, latency, drops, reconnects, ...)
    GET /api/alerts?since=ISO_TIME     alerts.jsonl records ending at or after ISO_TIME
    GET /api/events                    server-sent events: ``hello`` (full state), then
                                       ``update`` (health + new timeline points) and
                                       ``alert`` (one record) as they happen
    GET /api/cameras/{name}/frame.jpg  the latest scored frame with its error heatmap
    GET /files/snapshots/..., /files/clips/...   alert snapshots and clips

With a token (any host but loopback), every request needs it: ``?token=`` (which also sets
a cookie for the page's images and clips), the cookie, or ``Authorization: Bearer``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from importlib import resources
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ddlvad.serve.alerts import parse_iso
from ddlvad.serve.site import Site

COOKIE = "ddlvad_token"
TICK_S = 0.5  # how often the event stream sends an update


class TokenGate:
    """ASGI middleware: refuse requests without the token (401)."""

    def __init__(self, app, token: str) -> None:
        self.app, self.token = app, token

    def _given(self, scope) -> tuple[str, bool]:
        query = parse_qs(scope.get("query_string", b"").decode()).get("token", [""])[0]
        if query:
            return query, True
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        for part in headers.get("cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == COOKIE:
                return v, False
        return "", False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given, from_query = self._given(scope)
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            await JSONResponse({"error": "token required"}, status_code=401)(scope, receive, send)
            return

        async def send_cookie(message) -> None:
            if message["type"] == "http.response.start" and from_query:
                cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_cookie)


def _sse(event: str, data) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def create_app(site: Site) -> Starlette:
    """The Starlette app over a running ``site``."""
    page = resources.files("ddlvad.serve").joinpath("static/index.html").read_text("utf-8")

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    async def health(request: Request) -> Response:
        return JSONResponse(site.health())

    async def cameras(request: Request) -> Response:
        return JSONResponse([c.snapshot() for c in site.cameras.values()])

    async def alerts(request: Request) -> Response:
        since = request.query_params.get("since")
        try:
            t = parse_iso(since) if since else None
        except ValueError:
            msg = f"since={since!r}: expected an ISO 8601 time, e.g. 2026-01-31T08:00:00Z"
            return JSONResponse({"error": msg}, status_code=400)
        records = await asyncio.to_thread(site.alerts.read, t)
        return JSONResponse(records)

    async def frame(request: Request) -> Response:
        cam = site.cameras.get(request.path_params["name"])
        if cam is None:
            return JSONResponse({"error": "no such camera"}, status_code=404)
        if cam.latest is None:
            return JSONResponse({"error": "no frame scored yet"}, status_code=503)
        return Response(cam.latest, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def stream() -> AsyncIterator[str]:
        hello = {
            "cameras": [{**c.snapshot(), "points": c.points()} for c in site.cameras.values()],
            "alerts": list(reversed(site.alerts.read()[-50:])),
            "health": site.health(),
        }
        last = {n: (c.timeline[-1][0] if c.timeline else 0) for n, c in site.cameras.items()}
        seq = site.alert_seq
        yield _sse("hello", hello)
        while not site.stopping.is_set():
            await asyncio.sleep(TICK_S)
            update = {"health": site.health(), "points": {}}
            for name, cam in site.cameras.items():
                pts = cam.points(last[name])
                if pts:
                    last[name] = int(pts[-1][0])
                update["points"][name] = pts
            yield _sse("update", update)
            seq, new = site.alerts_after(seq)
            for record in new:
                yield _sse("alert", record)

    async def events(request: Request) -> Response:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    routes = [
        Route("/", index),
        Route("/api/health", health),
        Route("/api/cameras", cameras),
        Route("/api/alerts", alerts),
        Route("/api/events", events),
        Route("/api/cameras/{name}/frame.jpg", frame),
        Mount("/files", StaticFiles(directory=site.out)),
    ]
    app = Starlette(routes=routes)
    if site.token:
        app.add_middleware(TokenGate, token=site.token)
    return app
