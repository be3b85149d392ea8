"""Label Studio's ML backend inside ``oceanid serve``, under ``/label-studio``.

::

    protocol.py   the request / response bodies (pydantic), from Label Studio's documented formats
    config.py     the project's label config (XML) -> the <Choices> / <RectangleLabels> oceanid fills
    fetch.py      task images: uploads and local files on Label Studio (URL + token), http(s), data URIs
    predict.py    tasks -> predictions: batched identify / the cascade, the label mapping rules
    learn.py      an annotation -> the ToolAnnotation the Workspace stores as truth crops
    settings.py   LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY, the fallback label, examples per new species
    routes.py     the router: /health /setup /predict /webhook
"""

from __future__ import annotations

from app.api.label_studio.routes import router
from app.api.label_studio.settings import LabelStudioSettings

__all__ = ["LabelStudioSettings", "router"]
