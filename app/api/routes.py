"""``create_app``: the FastAPI app over one Workspace (OpenAPI docs at ``/docs``).

Every route parses its request (:mod:`app.api.inputs`), makes one Workspace call in
the thread pool (the encoder and FAISS release the GIL) and returns the result's
``to_dict()``. The Workspace follows the catalog: each call checks the engine key
(model, live generation, prototypes version; a file stat while nothing changed) and a
new engine, loaded whole, replaces the old one between requests, so a CLI
``index build`` or ``species add`` is picked up without a restart and no request
sees half an update. Response schemas are derived from the result dataclasses.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool

from app.api import errors
from app.api.guards import BodyLimit, TokenGuard
from app.api.inputs import IdentifyRequest, SearchRequest, SpeciesRequest, read_request, request_body
from app.api.label_studio import router as label_studio_router
from app.api.settings import ApiSettings
from app.workspace import (
    Batcher,
    CropHit,
    Identification,
    IdentificationRecord,
    SpeciesChange,
    SpeciesInfo,
    Workspace,
    WorkspaceStatus,
    embed_items,
    limit_threads,
)
from index.errors import BadImage, InvalidInput, OceanidError, describe

log = logging.getLogger(__name__)

ERRORS = {
    code: {"description": why, "content": {"application/json": {"example": {"error": "one line", "type": t}}}}
    for code, why, t in (
        (401, "token missing or wrong", "Unauthorized"),
        (403, "server is read-only", "ReadOnly"),
        (404, "unknown crop id, species or model", "NotFound"),
        (409, "nothing to query yet, or index and model disagree", "EmptyIndex"),
        (413, "request body over the size limit", "BodyTooLarge"),
        (422, "bad input: image, filter, field", "InvalidInput"),
        (503, "catalog busy, or the encoder's queue full (see Retry-After)", "CatalogBusy"),
    )
}


def _json(result: Any) -> JSONResponse:
    """A result dataclass, or a list of them, as its ``to_dict()``."""
    if isinstance(result, list):
        return JSONResponse([r.to_dict() for r in result])
    return JSONResponse(result.to_dict())


def create_app(workspace: Workspace | None = None, settings: ApiSettings = ApiSettings()) -> FastAPI:
    """The API over ``workspace`` (default: ``Workspace(settings.home, device=settings.device)``)."""
    ws = workspace or Workspace(settings.home, device=settings.device)
    model = settings.model
    batchers: dict[str, Batcher] = {}  # model id -> its batcher: one forward pass at a time per model
    made = threading.Lock()

    def batcher(model_id: str) -> Batcher:
        with made:
            if model_id not in batchers:
                batchers[model_id] = Batcher(
                    lambda images: ws.engine(model_id).embed(images),
                    settings.batch_window_ms / 1000,
                    settings.max_batch,
                    settings.max_queue,
                    name=model_id,
                )
            return batchers[model_id]

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        try:  # warm: the first request should not pay for loading the encoder (nor its imports)
            engine = await run_in_threadpool(ws.engine, model)
            await run_in_threadpool(ws.embed_query, Image.new("RGB", (32, 32)), model)
            log.info("oceanid API: engine %s/%s warm", engine.model_id, engine.generation)
        except OceanidError as exc:
            log.warning("oceanid API: no engine yet (%s); queries say so until one is built", describe(exc))
        yield
        for each in list(batchers.values()):
            each.close()

    app = FastAPI(
        title="oceanid",
        lifespan=lifespan,
        responses=ERRORS,
        description="Identify marine organisms in images by searching an embedding space. "
        "Images go as multipart files or base64 in JSON; every error is "
        '`{"error": one line, "type": name}`.',
    )
    errors.install(app)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    if settings.token:
        app.add_middleware(TokenGuard, token=settings.token)  # added last: runs first

    def writable() -> None:
        if settings.read_only:
            raise errors.ReadOnly("this server is read-only")

    @app.post(
        "/identify",
        response_model=list[IdentificationRecord],
        openapi_extra=request_body(IdentifyRequest),
        summary="Name the species in images or catalog crops (or 'unknown')",
    )
    async def identify(request: Request) -> JSONResponse:
        req, uploads = await read_request(request, IdentifyRequest, settings.max_images)
        if not uploads and not req.crops:
            raise InvalidInput("send at least one image (a file part, or base64 in `images`) or a crop id in `crops`")
        if len(uploads) + len(req.crops) > settings.max_images:
            raise InvalidInput(f"{len(uploads) + len(req.crops)} items in one request; at most {settings.max_images}")

        def work() -> list[Identification]:
            crops = ws.identify_crops(req.crops, k=req.k, model=model) if req.crops else []  # their stored vectors
            if not uploads:
                return crops
            items, names = [u.data for u in uploads], [u.name for u in uploads]
            vectors = embed_items(batcher(ws.engine(model).model_id), items, names)  # with concurrent requests'
            return ws.identify(items, k=req.k, model=model, names=names, vectors=vectors) + crops

        results = await run_in_threadpool(work)
        if all(r.error for r in results):
            first = results[0].error
            raise BadImage(
                first if len(results) == 1 else f"none of the {len(results)} images could be read; first: {first}"
            )
        return _json(results)

    @app.post(
        "/search",
        response_model=list[CropHit],
        openapi_extra=request_body(SearchRequest),
        summary="The crops nearest an image or a catalog crop, inside an optional filter",
    )
    async def search(request: Request) -> JSONResponse:
        req, uploads = await read_request(request, SearchRequest, 1)
        if (req.crop is None) == (not uploads):
            raise InvalidInput("send either an image (a file part, or base64 in `image`) or a `crop` id")
        query = req.crop if req.crop is not None else uploads[0].data
        return _json(await run_in_threadpool(ws.search, query, k=req.k, where=req.where, model=model, space=req.space))

    @app.post(
        "/species",
        response_model=SpeciesChange,
        openapi_extra=request_body(SpeciesRequest),
        summary="Add a species from a few example crops, without retraining",
    )
    async def species_add(request: Request) -> JSONResponse:
        writable()
        req, uploads = await read_request(request, SpeciesRequest, settings.max_images)
        if not uploads:
            raise InvalidInput("send a few example images (file parts, or base64 in `images`)")
        return _json(
            await run_in_threadpool(ws.species_add, req.name, [u.data for u in uploads], req.genus, req.family, model)
        )

    @app.delete(
        "/species/{name:path}", response_model=SpeciesChange, summary="Remove a species added with POST /species"
    )
    async def species_remove(name: str) -> JSONResponse:
        writable()
        return _json(await run_in_threadpool(ws.species_remove, name, model))

    @app.get(
        "/species",
        response_model=list[SpeciesInfo],
        summary="Every species with its status, examples and confusable species",
    )
    async def species_list() -> JSONResponse:
        return _json(await run_in_threadpool(ws.species_summary, model))

    @app.get("/status", response_model=WorkspaceStatus, summary="Model, live generation and counts")
    async def status() -> JSONResponse:
        return _json(await run_in_threadpool(ws.status))

    @app.get("/health", summary="The server is up (200, even before a model exists)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(label_studio_router(ws, settings), prefix="/label-studio")  # Label Studio's ML backend
    return app


def create_app_from_env() -> FastAPI:
    """The app from ``OCEANID_API_*`` variables: what each uvicorn worker process builds."""
    limit_threads()  # $OCEANID_THREADS, which `oceanid serve` set (each worker is its own process)
    return create_app(settings=ApiSettings.from_env())
