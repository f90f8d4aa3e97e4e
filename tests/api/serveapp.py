"""`conveyor serve --app api.serveapp:app` in the serve tests (store from CONVEYOR_URL)."""

from __future__ import annotations

import os

from .webapp import build_app

app, flags = build_app(os.environ.get("CONVEYOR_URL", "sqlite:///./serve.db"))
