"""How one API server is configured: a frozen dataclass, passed to ``create_app``.

``oceanid serve`` starts uvicorn (and its ``--workers`` processes) with an import
string, so the settings travel as ``OCEANID_API_*`` environment variables
(written by ``app.cli.serve.api_env``, read by :meth:`ApiSettings.from_env`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app.workspace.batching import MAX_BATCH, WINDOW_S

ENV_PREFIX = "OCEANID_API_"


@dataclass(frozen=True)
class ApiSettings:
    home: Path | None = None  # None: $OCEANID_HOME, else ./data
    model: str | None = None  # None: the catalog's current model, followed as it changes
    device: str = "cpu"  # where the encoder runs: cpu | cuda | auto
    token: str | None = None  # required on every request when set (always set off loopback)
    read_only: bool = False  # refuse POST / DELETE /species
    max_request_bytes: int = 32 * 1024 * 1024  # whole request body, JSON or multipart
    max_images: int = 256  # images + crop ids in one /identify request
    batch_window_ms: float = WINDOW_S * 1000  # /identify: how long a request waits for others (measured: 0)
    max_batch: int = MAX_BATCH  # images in one forward pass
    max_queue: int = 256  # images waiting for the encoder; more: 503 + Retry-After

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ApiSettings:
        """The settings from ``OCEANID_API_*`` variables (unset or empty: the default)."""
        env = dict(os.environ if env is None else env)
        get = lambda key, default="": env.get(ENV_PREFIX + key, default)  # noqa: E731
        return cls(
            home=Path(get("HOME")) if get("HOME") else None,
            model=get("MODEL") or None,
            device=get("DEVICE", "cpu"),
            token=get("TOKEN") or None,
            read_only=bool(get("READ_ONLY")),
            max_request_bytes=int(get("MAX_REQUEST_BYTES", str(cls.max_request_bytes))),
            max_images=int(get("MAX_IMAGES", str(cls.max_images))),
            batch_window_ms=float(get("BATCH_WINDOW_MS", str(cls.batch_window_ms))),
            max_batch=int(get("MAX_BATCH", str(cls.max_batch))),
            max_queue=int(get("MAX_QUEUE", str(cls.max_queue))),
        )
