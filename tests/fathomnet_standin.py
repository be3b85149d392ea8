"""A stand-in FathomNet server on 127.0.0.1 for tests (no network needed).

It answers the requests the ``fathomnet`` client package sends, with the JSON
shapes of its DTOs, under the same paths as the public servers:

    POST {url}/images/query                 GeoImageConstraints -> [AImageDTO]
    GET  {url}/images/query/concept/<c>     -> [AImageDTO]
    GET  {url}/images/<uuid>                -> AImageDTO
    GET  {worms_url}/taxa/ancestors/<name>  -> WormsNode tree, root -> name
    GET  {worms_url}/ancestors/<name>       -> [str]
    GET  {worms_url}/parent/<name>          -> str
    GET  /static/<uuid>.png|.jpg            -> image bytes drawn with PIL

and injects faults per path (see :class:`Fault`). Paths are counted after
unquoting and collapsing repeated slashes (the client asks WoRMS for
``/worms//taxa/...``), so ``standin.requests["/worms/taxa/ancestors/Aurelia aurita"]``.

Use::

    with StandIn() as s:                      # default catalog: SAMPLE_IMAGES, SAMPLE_WORMS
        monkeypatch.setenv("FATHOMNET_API_URL", s.url)
        monkeypatch.setenv("FATHOMNET_WORMS_API_URL", s.worms_url)
        ...
        assert s.requests[s.image_path(uuid)] == 1
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import uuid as uuidlib
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from fathomnet import dto
from PIL import Image, ImageDraw


@dataclass
class Fault:
    """A misbehaviour for one path: the first ``times`` requests (all if None) get it.

    kind: '500' (HTTP 500), '404', 'slow' (wait ``delay`` s, then answer),
    'truncate' (Content-Length says more than is sent, then the connection
    closes), 'malformed' (200 with a body that is not JSON), 'corrupt' (200,
    full length, bytes that are no image), 'close' (hang up without answering).
    """

    kind: str
    times: int | None = None
    delay: float = 1.0


KINDS = ("500", "404", "slow", "truncate", "malformed", "corrupt", "close")


def box_json(concept: str, x: int, y: int, w: int, h: int, **extra: Any) -> dict:
    """An ABoundingBoxDTO-shaped dict (uuid derived from the rest unless given)."""
    key = f"{concept}/{x}/{y}/{w}/{h}"
    d = {
        "uuid": str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, key)),
        "concept": concept,
        "x": x,
        "y": y,
        "width": w,
        "height": h,
        "rejected": False,
        "observer": "standin",
    }
    d.update(extra)
    dto.ABoundingBoxDTO.from_dict(d)  # fail loudly if a test builds a shape the client cannot read
    return d


def image_json(
    name: str,
    boxes: list[dict],
    *,
    depth: float | None = None,
    fmt: str = "png",
    size: tuple[int, int] = (96, 64),
    **extra: Any,
) -> dict:
    """An AImageDTO-shaped dict; ``url`` is relative (the server makes it absolute)."""
    uid = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, name))
    d = {
        "uuid": uid,
        "url": f"/static/{uid}.{fmt}",
        "width": size[0],
        "height": size[1],
        "depthMeters": depth,
        "latitude": 36.7,
        "longitude": -122.0,
        "imagingType": "ROV",
        "timestamp": "2019-03-05T17:54:56.000Z",
        "temperatureCelsius": 4.5,
        "salinity": 34.2,
        "oxygenMlL": 0.6,
        "boundingBoxes": boxes,
        "valid": True,
        "mediaType": "IMAGE",
    }
    d.update(extra)
    dto.AImageDTO.from_dict(d)  # fail loudly if a test builds a shape the client cannot read
    return d


def _catalog() -> dict[str, dict]:
    seb, crab, jelly = "Sebastolobus altivelis", "Chionoecetes tanneri", "Aurelia aurita"
    specs = [
        ("seb-1", [box_json(seb, 10, 8, 30, 20)], 410.0, "png"),
        ("seb-2", [box_json(seb, 40, 20, 36, 24), box_json(seb, 5, 5, 20, 14)], 650.0, "png"),
        ("seb-3", [box_json(seb, 20, 30, 40, 25)], 900.5, "jpg"),
        ("seb-4", [box_json(seb, 12, 12, 50, 30)], 1200.0, "png"),
        ("crab-1", [box_json(crab, 30, 10, 40, 40), box_json(seb, 2, 40, 20, 12)], 700.0, "png"),
        ("crab-2", [box_json(crab, 10, 10, 30, 30)], 820.0, "jpg"),
        ("crab-3", [box_json(crab, 50, 20, 30, 30), box_json(crab, 1, 1, 10, 10, rejected=True)], 1000.0, "png"),
        ("jelly-1", [box_json(jelly, 20, 10, 40, 40)], 12.0, "png"),
        ("jelly-2", [box_json(jelly, 30, 5, 44, 50)], 48.5, "png"),
    ]
    out = {}
    for name, boxes, depth, fmt in specs:
        d = image_json(name, boxes, depth=depth, fmt=fmt)
        out[d["uuid"]] = d
    return out


SAMPLE_IMAGES: dict[str, dict] = _catalog()  # uuid -> AImageDTO dict; do not mutate, copy

# name -> (parent, WoRMS rank); "object" is WoRMS's root as FathomNet serves it.
SAMPLE_WORMS: dict[str, tuple[str | None, str | None]] = {
    "object": (None, None),
    "Animalia": ("object", "Kingdom"),
    "Chordata": ("Animalia", "Phylum"),
    "Actinopterygii": ("Chordata", "Class"),
    "Perciformes": ("Actinopterygii", "Order"),
    "Sebastidae": ("Perciformes", "Family"),
    "Sebastolobus": ("Sebastidae", "Genus"),
    "Sebastolobus altivelis": ("Sebastolobus", "Species"),
    "Arthropoda": ("Animalia", "Phylum"),
    "Malacostraca": ("Arthropoda", "Class"),
    "Decapoda": ("Malacostraca", "Order"),
    "Oregoniidae": ("Decapoda", "Family"),
    "Chionoecetes": ("Oregoniidae", "Genus"),
    "Chionoecetes tanneri": ("Chionoecetes", "Species"),
    "Cnidaria": ("Animalia", "Phylum"),
    "Scyphozoa": ("Cnidaria", "Class"),
    "Semaeostomeae": ("Scyphozoa", "Order"),
    "Ulmaridae": ("Semaeostomeae", "Family"),
    "Aurelia": ("Ulmaridae", "Genus"),
    "Aurelia aurita": ("Aurelia", "Species"),
}


def render_image(image: dict, fmt: str) -> bytes:
    """Deterministic frame for an AImageDTO dict: a tinted background, one filled box per box."""
    w, h = image.get("width") or 96, image.get("height") or 64
    seed = hashlib.sha256(image["uuid"].encode()).digest()
    im = Image.new("RGB", (w, h), tuple(seed[:3]))
    draw = ImageDraw.Draw(im)
    for b in image.get("boundingBoxes") or []:
        c = hashlib.sha256(b["concept"].encode()).digest()
        draw.rectangle([b["x"], b["y"], b["x"] + b["width"] - 1, b["y"] + b["height"] - 1], fill=tuple(c[:3]))
    buf = io.BytesIO()
    im.save(buf, format="JPEG" if fmt in ("jpg", "jpeg") else "PNG")
    return buf.getvalue()


class StandIn:
    """The server. ``images``: uuid -> AImageDTO dict; ``faults``: path -> Fault; ``worms``: name -> (parent, rank)."""

    def __init__(
        self,
        port: int = 0,
        images: dict[str, dict] | None = None,
        faults: dict[str, Fault] | None = None,
        worms: dict[str, tuple[str | None, str | None]] | None = None,
    ) -> None:
        self.images = dict(SAMPLE_IMAGES if images is None else images)
        self.faults = dict(faults or {})
        self.worms = dict(SAMPLE_WORMS if worms is None else worms)
        for key, fault in self.faults.items():
            if fault.kind not in KINDS:
                raise ValueError(f"unknown fault kind {fault.kind!r} for {key}; valid: {KINDS}")
        self.requests: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []  # (method, path) in arrival order
        self._hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bytes: dict[str, bytes] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """What ``FATHOMNET_API_URL`` should be."""
        return self.base + "/api"

    @property
    def worms_url(self) -> str:
        """What ``FATHOMNET_WORMS_API_URL`` should be."""
        return self.base + "/worms"

    def env(self) -> dict[str, str]:
        return {"FATHOMNET_API_URL": self.url, "FATHOMNET_WORMS_API_URL": self.worms_url}

    def image_path(self, uuid: str) -> str:
        return urlsplit(self._absolute(self.images[uuid]["url"])).path

    def count(self, prefix: str) -> int:
        """Requests seen whose path starts with ``prefix``."""
        with self._lock:
            return sum(n for p, n in self.requests.items() if p.startswith(prefix))

    def start(self) -> StandIn:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fathomnet-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering -------------------------------------------------------------

    def _absolute(self, url: str) -> str:
        return self.base + url if url.startswith("/") else url

    def _image_out(self, image: dict) -> dict:
        return image | {"url": self._absolute(image["url"])} if image.get("url") else dict(image)

    def _fault(self, path: str) -> Fault | None:
        with self._lock:
            self.requests[path] += 1
            fault = self.faults.get(path)
            if fault is None:
                return None
            self._hits[path] += 1
            return fault if fault.times is None or self._hits[path] <= fault.times else None

    def _query(self, c: dict) -> list[dict]:
        out = []
        for im in self.images.values():
            d = im.get("depthMeters")
            if c.get("concept") and not any(b.get("concept") == c["concept"] for b in im.get("boundingBoxes") or []):
                continue
            if c.get("minDepth") is not None and (d is None or d < c["minDepth"]):
                continue
            if c.get("maxDepth") is not None and (d is None or d > c["maxDepth"]):
                continue
            out.append(self._image_out(im))
        start = c.get("offset") or 0
        end = None if c.get("limit") is None else start + c["limit"]
        return out[start:end]

    def _chain(self, name: str) -> list[str]:
        chain = [name]
        while (parent := self.worms[chain[-1]][0]) is not None:
            chain.append(parent)
        return chain[::-1]

    def _tree(self, name: str) -> dict:
        node: dict | None = None
        for n in reversed(self._chain(name)):
            rank = self.worms[n][1]
            aphia = int(hashlib.sha256(n.encode()).hexdigest()[:6], 16)
            node = {
                "name": n,
                "rank": rank,
                "aphiaId": aphia,
                "acceptedAphiaId": aphia,
                "alternateNames": [],
                "children": [node] if node else [],
            }
        return node

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        """(status, content type, body) for a request without faults."""

        def js(obj: Any, status: int = 200) -> tuple[int, str, bytes]:
            return status, "application/json", json.dumps(obj).encode()

        not_found = js({"error": f"nothing at {path}"}, 404)
        m = re.fullmatch(r"/api/images/(.+)", path)
        if method == "POST" and path == "/api/images/query":
            return js(self._query(json.loads(body or b"{}")))
        if method == "GET" and m and m.group(1).startswith("query/concept/"):
            return js(self._query({"concept": m.group(1)[len("query/concept/") :]}))
        if method == "GET" and m and m.group(1) in self.images:
            return js(self._image_out(self.images[m.group(1)]))
        w = re.fullmatch(r"/worms/(taxa/ancestors|ancestors|parent)/(.+)", path)
        if method == "GET" and w and w.group(2) in self.worms:
            kind, name = w.groups()
            if kind == "taxa/ancestors":
                return js(self._tree(name))
            if kind == "ancestors":
                return js(self._chain(name)[:-1])
            return js(self.worms[name][0])
        s = re.fullmatch(r"/static/([^/]+)\.(png|jpg|jpeg)", path)
        if method == "GET" and s and s.group(1) in self.images:
            uid, fmt = s.groups()
            with self._lock:
                if path not in self._bytes:
                    self._bytes[path] = render_image(self.images[uid], fmt)
                data = self._bytes[path]
            return 200, "image/jpeg" if fmt != "png" else "image/png", data
        return not_found


def _handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10  # idle keep-alive connections end after this

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _send(self, status: int, ctype: str, body: bytes, length: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def _serve(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = re.sub(r"/+", "/", unquote(urlsplit(self.path).path))
            with standin._lock:
                standin.log.append((method, path))
            fault = standin._fault(path)
            try:
                if fault is None:
                    self._send(*standin.answer(method, path, body))
                elif fault.kind == "500":
                    self._send(500, "application/json", b'{"error": "internal"}')
                elif fault.kind == "404":
                    self._send(404, "application/json", b'{"error": "not found"}')
                elif fault.kind == "malformed":
                    self._send(200, "application/json", b'{"content": [{"uuid": ')
                elif fault.kind == "close":
                    self.close_connection = True
                elif fault.kind == "slow":
                    if not standin._stop.wait(fault.delay):
                        self._send(*standin.answer(method, path, body))
                elif fault.kind == "corrupt":
                    status, ctype, data = standin.answer(method, path, body)
                    self._send(status, ctype, bytes(len(data)))
                elif fault.kind == "truncate":
                    status, ctype, data = standin.answer(method, path, body)
                    self._send(status, ctype, data[: len(data) // 2], length=len(data))
                    self.close_connection = True
            except (BrokenPipeError, ConnectionResetError):  # the client gave up first
                self.close_connection = True

    return Handler
