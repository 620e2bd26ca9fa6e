"""Turn a notebook's widget outputs into static ones, for pages that have no kernel.

An executed lesson stores its widgets as a view (a model id) plus the state of every
model in the notebook's metadata. A page without a kernel, or without the
JavaScript widget manager (which would come from a CDN), shows nothing there. This
module replaces each widget view by what the widget showed when the lesson finished:
its controls as text ("pruned %: 95"), its HTML read-outs and its images, under a
note saying that the live version runs in JupyterLab. The widget state is then
dropped from the metadata, so no exporter asks a CDN for the widget manager.

Example:
    >>> import nbformat
    >>> from nbformat.v4 import new_code_cell, new_notebook, new_output
    >>> state = {"a": {"model_name": "IntSliderModel",
    ...                "state": {"description": "bits", "value": 4}}}
    >>> view = {"model_id": "a", "version_major": 2, "version_minor": 0}
    >>> cell = new_code_cell("w", outputs=[new_output("display_data", data={
    ...     "application/vnd.jupyter.widget-view+json": view, "text/plain": "IntSlider"})])
    >>> nb = new_notebook(cells=[cell], metadata={"widgets": {WIDGET_STATE: {"state": state}}})
    >>> nb = make_static(nb)
    >>> "widgets" in nb.metadata, "bits: 4" in nb.cells[0].outputs[0]["data"]["text/html"]
    (False, True)
"""

from __future__ import annotations

import base64
import html
import re

from nbformat.v4 import new_output

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
NOTE = ("Interactive explorer: open this lesson in JupyterLab (<code>make lab</code>) to move "
        "its controls. Shown here as it stood when the lesson finished:")
IMAGE_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "gif": "image/gif"}
NO_VALUE_MODELS = {"ButtonModel", "HTMLModel", "HTMLMathModel", "ImageModel", "LabelModel",
                   "OutputModel"}


def _model_ids(value) -> list[str]:
    """Model ids referenced as ``"IPY_MODEL_<id>"`` in a state value (a string or a list)."""
    items = value if isinstance(value, list) else [value]
    return [v[len("IPY_MODEL_"):] for v in items
            if isinstance(v, str) and v.startswith("IPY_MODEL_")]


def _collect(model_id: str, models: dict, found: dict, seen: set) -> None:
    """Walk a widget tree depth first, sorting what it shows into ``found``."""
    if model_id in seen or model_id not in models:
        return
    seen.add(model_id)
    model = models[model_id]
    name, state = model.get("model_name", ""), model.get("state", {})
    if name.endswith("BoxModel") or name in ("TabModel", "AccordionModel", "StackModel"):
        for child in _model_ids(state.get("children", [])):
            _collect(child, models, found, seen)
    elif name == "ImageModel":
        buffers = {tuple(b.get("path", [])): b.get("data") for b in model.get("buffers", [])}
        data = buffers.get(("value",))
        if data:
            mime = IMAGE_FORMATS.get(str(state.get("format", "png")).lower(), "image/png")
            found["images"].append((mime, data))
    elif name in ("HTMLModel", "HTMLMathModel"):
        value = str(state.get("value", ""))
        if value.strip() and not value.lstrip().startswith("<style"):
            found["html"].append(value)
    elif name == "LabelModel":
        found["html"].append(html.escape(str(state.get("value", ""))))
    elif name not in NO_VALUE_MODELS and ("value" in state or "index" in state):
        label = str(state.get("description", "")).strip()
        if "_options_labels" in state and state.get("index") is not None:
            labels, index = state["_options_labels"], state["index"]
            indexes = index if isinstance(index, list) else [index]
            value = ", ".join(str(labels[i]) for i in indexes if 0 <= i < len(labels))
        else:
            value = state.get("value")
            if isinstance(value, list):
                value = " to ".join(map(str, value))
        found["controls"].append(f"{label}: {value}" if label else str(value))


def static_outputs(view: dict, models: dict) -> list:
    """The outputs that stand for one widget view: a note with controls and read-outs, images.

    Args:
        view: the ``application/vnd.jupyter.widget-view+json`` data of an output.
        models: model id -> stored model (``{"model_name", "state", "buffers"}``).

    Returns:
        A list of ``display_data`` outputs (empty when the model is unknown).
    """
    found = {"controls": [], "html": [], "images": []}
    _collect(view.get("model_id", ""), models, found, set())
    if not any(found.values()):
        return []
    parts = [f"<p class='pk-static-note'><em>{NOTE}</em></p>"]
    if found["controls"]:
        parts.append("<p class='pk-static-controls'>"
                     + " · ".join(html.escape(c) for c in found["controls"]) + "</p>")
    parts.extend(found["html"])
    text = "; ".join(found["controls"]) or "interactive explorer"
    outputs = [new_output("display_data", data={
        "text/html": "<div class='pk-static-widget'>" + "\n".join(parts) + "</div>",
        "text/plain": f"[interactive explorer: {text}]"})]
    readout = " ".join(" ".join(html.unescape(re.sub(r"<[^>]+>", " ", h)).split())
                       for h in found["html"])
    alt = ("The interactive explorer's figure as the lesson left it"
           + (f", set to {text}" if found["controls"] else "")
           + (f"; its readout: {readout}" if readout else "") + ".")
    for mime, data in found["images"]:
        # nbformat keeps images base64-encoded; check it decodes before handing it on
        base64.b64decode(data, validate=False)
        outputs.append(new_output("display_data", data={mime: data, "text/plain": "[figure]"},
                                  metadata={mime: {"alt": alt}}))
    return outputs


def make_static(nb):
    """Replace every widget view of ``nb`` by static outputs and drop the widget state.

    Args:
        nb: an executed notebook (``nbformat.NotebookNode``), changed in place.

    Returns:
        The same notebook.
    """
    widgets = nb.metadata.pop("widgets", {})
    models = widgets.get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                outputs.append(output)
            else:
                outputs.extend(static_outputs(view, models))
        cell.outputs = outputs
    return nb
