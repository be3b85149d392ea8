"""The Label Studio ML-backend endpoints, mounted under ``/label-studio`` by ``create_app``.

``GET /health``, ``POST /setup`` (the model version), ``POST /predict`` (pre-annotations) and
``POST /webhook`` (annotations become truth crops; ``START_TRAINING`` is answered, not run).
Label Studio connects with its backend URL ``http://HOST:PORT/label-studio``; the server's token
rule holds (Label Studio sends it as the basic-auth password, webhooks as a Bearer header).
Every bad input is one log line and a well-formed answer.

The model version is ``model@generation``, plus ``+tool.<tag>`` once annotations were stored (a digest
of the crops recall finds: ``Workspace.annotation_tag``). Label Studio's "Retrieve predictions" asks
``/setup`` for the version and sends ``/predict`` only the tasks that hold no prediction of it, so the
version must change the moment a correction becomes recallable, not once the new index generation is
live (the build can outlast Label Studio's 1 s webhook wait by far). And since Label Studio gives up on
a webhook after 1 s while oceanid keeps storing, ``/setup`` and ``/predict`` wait (up to ``SETTLE_S``)
until every webhook of this process has made its crops recallable (``Storing``; with several uvicorn
workers, a webhook another worker stores is not waited for).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from app.api.label_studio.config import LabelConfig, parse_label_config
from app.api.label_studio.fetch import ImageFetcher
from app.api.label_studio.learn import annotation_boxes, deleted_ids, learn_label
from app.api.label_studio.predict import predict_tasks
from app.api.label_studio.protocol import (
    Health,
    Prediction,
    PredictRequest,
    PredictResponse,
    SetupRequest,
    SetupResponse,
    WebhookRequest,
    WebhookResponse,
    project_id,
)
from app.api.label_studio.settings import LabelStudioSettings
from app.api.settings import ApiSettings
from app.workspace import Workspace
from index.errors import BadImage, InvalidInput, OceanidError, describe

log = logging.getLogger(__name__)

TRAINING = (
    "training is a CLI step: run `oceanid split` then `oceanid train` (and `oceanid embed`, "
    "`oceanid index build`); annotations already reach predictions without it"
)


SETTLE_S = 2.0  # the longest /setup waits for a storing webhook: Label Studio gives /setup 3 s (ML_TIMEOUT_SETUP)


class Storing:
    """The webhooks of this process whose crops are not yet recallable (or, for a deletion, not yet gone):
    until they are, a prediction would still read the old answer under the old model version."""

    def __init__(self) -> None:
        self._pending = 0
        self._changed = threading.Condition()

    @contextmanager
    def one(self) -> Iterator[Callable[[], None]]:
        """Register a webhook; yields the callback that marks its crops recallable (called at the end anyway)."""
        done = False

        def recallable() -> None:
            nonlocal done
            with self._changed:
                if not done:
                    done = True
                    self._pending -= 1
                    self._changed.notify_all()

        with self._changed:
            self._pending += 1
        try:
            yield recallable
        finally:
            recallable()

    def settled(self, seconds: float = SETTLE_S) -> bool:
        """Wait until no registered webhook is pending, at most ``seconds``; False when it gave up."""
        with self._changed:
            return self._changed.wait_for(lambda: self._pending == 0, timeout=seconds)


class Projects:
    """The label config of each project seen in /setup, /predict or a webhook (per process)."""

    def __init__(self) -> None:
        self._configs: dict[int, str] = {}
        self._lock = threading.Lock()

    def remember(self, project: int | None, xml: str | None) -> None:
        if project is not None and xml:
            with self._lock:
                self._configs[project] = xml

    def config(self, project: int | None, xml: str | None = None) -> str | None:
        self.remember(project, xml)
        return xml or (self._configs.get(project) if project is not None else None)


def router(ws: Workspace, settings: ApiSettings, ls: LabelStudioSettings | None = None) -> APIRouter:
    """The endpoints over ``ws`` (``ls``: default from the environment)."""
    ls = ls or LabelStudioSettings.from_env()
    fetcher = ImageFetcher(ls.url, ls.token, max_bytes=min(ls.max_image_bytes, settings.max_request_bytes))
    projects = Projects()
    model = settings.model
    r = APIRouter(tags=["label-studio"])

    storing = Storing()

    def version() -> str:
        model_id, generation, _ = ws.engine_key(model)
        tag = ws.annotation_tag(model)
        return f"{model_id}@{generation or 'none'}" + (f"+tool.{tag}" if tag else "")

    def settled() -> str:
        if not storing.settled():
            log.warning(
                "label-studio: a webhook is still storing after %.0f s; answering the version before it", SETTLE_S
            )
        return version()

    @r.get(
        "/health",
        response_model=Health,
        response_model_exclude_none=True,
        summary="Label Studio's backend check (answers at once: Label Studio waits 1 s)",
    )
    async def health() -> Health:
        return Health(status="UP", model_class="oceanid")

    @r.post("/setup", response_model=SetupResponse, summary="A project connects: its label config; the model version")
    async def setup(body: SetupRequest) -> SetupResponse:
        project = project_id(body.project)
        try:
            parse_label_config(body.schema_)
            projects.remember(project, body.schema_)
        except InvalidInput as exc:
            log.warning("label-studio setup project %s: %s; its tasks get empty predictions", project, exc)
        try:
            current = await run_in_threadpool(settled)
        except OceanidError as exc:
            log.warning("label-studio setup project %s: %s", project, describe(exc))
            current = "none"
        return SetupResponse(model_version=current)

    @r.post(
        "/predict",
        response_model=PredictResponse,
        response_model_exclude_none=True,
        summary="Pre-annotations for a batch of tasks",
    )
    async def predict(body: PredictRequest) -> PredictResponse:
        project = project_id(body.project)
        current = await run_in_threadpool(settled)  # no model: a one-line 409, as every query
        xml = projects.config(project, body.label_config)
        try:
            config: LabelConfig = parse_label_config(xml)
        except InvalidInput as exc:
            log.warning("label-studio predict project %s: %s; %d empty predictions", project, exc, len(body.tasks))
            return PredictResponse(
                results=[Prediction(model_version=current) for _ in body.tasks], model_version=current
            )
        predictions, tally = await run_in_threadpool(
            predict_tasks, ws, config, body.tasks, fetcher, ls.fallback, current, ls.fetch_threads, model
        )
        # a line at warning level (shown without --verbose) when a task went unpredicted or a species was mapped
        log.log(logging.WARNING if tally.failed or tally.missing else logging.INFO, tally.line(project, ls.fallback))
        return PredictResponse(results=predictions, model_version=current)

    @r.post("/webhook", response_model=WebhookResponse, summary="Annotations become truth crops (no retraining)")
    async def webhook(body: WebhookRequest) -> WebhookResponse:
        action = body.action.upper()
        project = project_id(body.project)
        if project is None and body.annotation is not None:
            project = body.annotation.project
        if action == "START_TRAINING":
            log.info("label-studio project %s asked to train: %s", project, TRAINING)
            return WebhookResponse(action=action, status="training", message=TRAINING)
        if action in ("ANNOTATION_DELETED", "ANNOTATIONS_DELETED"):
            ids = deleted_ids(body)
            if project is None or not ids:
                return _ignored(action, f"names no project ({project}) or no annotation id")

            def forget() -> list:
                with storing.one() as gone:  # in the worker thread: registered until the store ends
                    return [
                        ws.annotation_forget(
                            project, a, ls.min_examples, model, on_recallable=gone if a == ids[-1] else None
                        )
                        for a in ids
                    ]

            changes = await run_in_threadpool(forget)
            status = "removed" if any(c.action == "removed" for c in changes) else "absent"
            message = f"{len(ids)} annotation(s) of project {project}: {status}"
            log.info("label-studio webhook %s: %s", action, message)
            return WebhookResponse(
                action=action, status=status, message=message, changes=[c.to_dict() for c in changes]
            )
        if action not in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            return _ignored(action, "not an annotation event oceanid learns from")
        note, task = body.annotation, body.task
        if note is None or task is None or note.id is None or task.id is None:
            return _ignored(action, "has no annotation or task with ids")
        if note.was_cancelled:
            return _ignored(action, f"annotation {note.id} was skipped (cancelled) in Label Studio")
        xml = projects.config(project, body.project.get("label_config") if isinstance(body.project, dict) else None)
        if project is None or xml is None:
            return _ignored(
                action,
                f"is for project {project}, which oceanid has not seen (no label config in the event, no /setup)",
            )
        try:
            config = parse_label_config(xml)
            boxes, key = annotation_boxes(config, note.result, ls.fallback)
            if not boxes:
                return _ignored(
                    action,
                    f"annotation {note.id} labels nothing oceanid learns from (no label, or only {ls.fallback!r})",
                )
            ref = task.image_ref(key)

            def store():
                with storing.one() as recallable:  # in the worker thread: registered until the store ends
                    data = fetcher.fetch(ref if isinstance(ref, str) else "")
                    note_ = learn_label(project, task.id, note.id, data, boxes, ref)
                    return ws.annotation_store(note_, ls.min_examples, model, on_recallable=recallable)

            change = await run_in_threadpool(store)
        except (InvalidInput, BadImage) as exc:
            return _ignored(action, f"annotation {note.id} of task {task.id} not learned: {exc}")
        message = (
            f"annotation {note.id} of task {task.id} (project {project}): {change.action}, "
            f"{change.crops} truth crop(s)"
            + (f"; species added: {', '.join(change.species_added)}" if change.species_added else "")
        )
        log.info("label-studio webhook %s: %s", action, message)
        return WebhookResponse(action=action, status=change.action, message=message, changes=[change.to_dict()])

    return r


def _ignored(action: str, why: str) -> WebhookResponse:
    message = f"{action} {why}: ignored"
    log.warning("label-studio webhook: %s", message)
    return WebhookResponse(action=action, status="ignored", message=message)
