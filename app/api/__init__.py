"""The HTTP API (face 3): ``oceanid serve``, one warm engine behind FastAPI + uvicorn.

::

    settings.py   ApiSettings: token, read-only, size limits (and their environment form, for workers)
    guards.py     ASGI middleware: the bearer token (constant-time) and the request size limit
    errors.py     library errors -> JSON {"error": one line, "type"} with a status code, never a traceback
    inputs.py     request bodies (JSON with base64 images, or multipart uploads) -> Workspace inputs
    routes.py     create_app(): /identify /search /species /status /health, OpenAPI at /docs
    label_studio/ Label Studio's ML backend under /label-studio (its own router; see its __init__)

Like the CLI and the explorer it imports from ``app`` only ``app.workspace``;
responses are the Workspace results' ``to_dict()`` (what ``--json`` prints), and
their OpenAPI schemas are derived from those same dataclasses.
"""

from __future__ import annotations

from app.api.routes import create_app, create_app_from_env
from app.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app", "create_app_from_env"]
