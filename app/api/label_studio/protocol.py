"""Label Studio's ML-backend protocol as pydantic models (request and response bodies).

Written from Label Studio's documented formats: the task JSON (``data`` holds the image
URL under the ``value`` name of the ``<Image>`` tag), the prediction JSON (``result`` regions
with ``from_name``/``to_name``/``type``/``value``, percent coordinates for rectangles), and the
bodies its ML API connector sends (``/setup``, ``/predict``, ``/webhook``). Label Studio sends
more fields than oceanid reads, and adds fields between versions: every request model allows
extra keys, so a newer Label Studio is never refused for them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


def project_id(value: Any) -> int | None:
    """Label Studio's project reference as an int: ``3``, ``"3"``, ``"3.1733402325"`` (id.created),
    or a project object ``{"id": 3, ...}``; None when it holds none."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    head = str(value).split(".", 1)[0].strip()
    return int(head) if head.isascii() and head.isdecimal() else None


class Task(_Open):
    """A Label Studio task: its id and ``data`` (``{"image": "/data/upload/1/ab12-reef.png"}``)."""

    id: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    project: int | None = None

    def image_ref(self, key: str | None) -> Any:
        """The image reference under ``key``; a task whose data holds one value only (files imported
        before the config named its key: ``$undefined$``) gives that value."""
        if key in self.data:
            return self.data[key]
        return next(iter(self.data.values())) if len(self.data) == 1 else None


class SetupRequest(_Open):
    """``POST /setup``: sent when a backend is connected and before predictions."""

    project: Any = None  # "id.created-timestamp"
    schema_: str | None = Field(None, alias="schema", description="The project's label config (XML).")
    hostname: str | None = None  # Label Studio's own address, for relative image URLs
    access_token: str | None = None  # a token Label Studio offers for fetching task images
    model_version: str | None = None
    extra_params: Any = None


class SetupResponse(BaseModel):
    model_version: str


class PredictParams(_Open):
    context: Any = None


class PredictRequest(_Open):
    """``POST /predict``: the tasks to pre-annotate with the project's label config."""

    tasks: list[Task] = Field(default_factory=list)
    project: Any = None
    label_config: str | None = None
    params: PredictParams | None = None


class Region(BaseModel):
    """One predicted region (Label Studio's ``result`` item)."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    from_name: str
    to_name: str
    type: str  # choices | rectanglelabels
    value: dict[str, Any]
    score: float | None = None
    original_width: int | None = None
    original_height: int | None = None
    image_rotation: int | None = None


class Prediction(BaseModel):
    """The prediction for one task: its regions, a task-level score and the model version."""

    result: list[Region] = Field(default_factory=list)
    score: float | None = None
    model_version: str


class PredictResponse(BaseModel):
    results: list[Prediction]
    model_version: str


class Annotation(_Open):
    """An annotation in a webhook: its id, its task and the labelled ``result`` regions."""

    id: int | None = None
    task: Any = None
    project: int | None = None
    result: list[dict[str, Any]] = Field(default_factory=list)
    was_cancelled: bool = False


class Project(_Open):
    id: int | None = None
    label_config: str | None = None


class WebhookRequest(_Open):
    """``POST /webhook``: ``ANNOTATION_CREATED`` / ``ANNOTATION_UPDATED`` (task + annotation),
    ``ANNOTATIONS_DELETED`` (``annotations``: their ids) or ``START_TRAINING``."""

    action: str
    project: Any = None
    task: Task | None = None
    annotation: Annotation | None = None
    annotations: list[Annotation] = Field(default_factory=list)


class WebhookResponse(BaseModel):
    action: str
    status: str  # stored | replaced | unchanged | removed | absent | ignored | training
    message: str
    changes: list[dict[str, Any]] = Field(default_factory=list)


class Health(BaseModel):
    status: str
    model_class: str
    model_version: str | None = None
