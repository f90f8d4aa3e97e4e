"""The HTTP API, live dashboard and metrics (needs the `web` extra).

    from conveyor.web import create_app
    asgi = create_app(app)          # serve with uvicorn, or `conveyor serve`
"""

from .server import create_app, serve

__all__ = ["create_app", "serve"]
