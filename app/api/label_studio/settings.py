"""How the Label Studio backend is configured: Label Studio's address and token, the label that
stands for "unknown", and how many annotated examples add a new species.

Read from the environment, where ``oceanid serve`` puts its ``--label-studio-*`` options (each
uvicorn worker builds its app from there): ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` are
the names Label Studio's own ML backends read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from app.api.label_studio.config import DEFAULT_FALLBACK

MIN_EXAMPLES_DEFAULT = 5  # app.workspace.annotation_tool.MIN_EXAMPLES (bench/few_shot.py)


@dataclass(frozen=True)
class LabelStudioSettings:
    url: str | None = None  # Label Studio's address, for relative image URLs (uploads, local files)
    token: str | None = None  # its API token (legacy token, or a JWT access token)
    fallback: str = DEFAULT_FALLBACK  # the label for "unknown" and for species the config lacks
    min_examples: int = MIN_EXAMPLES_DEFAULT  # annotated crops before a new species is added
    max_image_bytes: int = 32 * 1024 * 1024  # largest task image fetched
    fetch_threads: int = 8  # task images fetched at once

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> LabelStudioSettings:
        env = dict(os.environ if env is None else env)
        return cls(
            url=env.get("LABEL_STUDIO_URL") or None,
            token=env.get("LABEL_STUDIO_API_KEY") or None,
            fallback=env.get("OCEANID_LABEL_STUDIO_FALLBACK") or DEFAULT_FALLBACK,
            min_examples=int(env.get("OCEANID_LABEL_STUDIO_MIN_EXAMPLES") or MIN_EXAMPLES_DEFAULT),
        )
