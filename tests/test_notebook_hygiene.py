"""Hygiene of the committed notebooks: what a student sees on GitHub or opens in JupyterLab.

No warnings printed to stderr, no stray object reprs (``<Axes: ...>``), each file at most 2 MB, and widget
metadata that renders (a ``widgets`` entry without its ``state``, or an output pointing at a widget whose
state is missing, stops GitHub from rendering the notebook)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_BYTES = 2_000_000
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WARNING = re.compile(r"\b\w*Warning\b")
OBJECT_REPR = re.compile(r"^<[\w.]+(: | object at 0x| at 0x)|^<Figure size")


def outputs(path: Path):
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        for output in cell.get("outputs", []):
            yield index, output


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_no_warnings_on_stderr(path):
    warned = [(index, "".join(output["text"])[:120]) for index, output in outputs(path)
              if output.get("name") == "stderr" and WARNING.search("".join(output["text"]))]
    assert not warned, f"cells print warnings (fix the cause, or filter one with a comment saying why): {warned}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_no_stray_object_reprs(path):
    reprs = [(index, "".join(output["data"].get("text/plain", ""))[:80]) for index, output in outputs(path)
             if output.get("output_type") == "execute_result"
             and OBJECT_REPR.search("".join(output["data"].get("text/plain", "")))]
    assert not reprs, f"end these cells' last line with ';' or assign it: {reprs}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_at_most_2_mb(path):
    assert path.stat().st_size <= MAX_BYTES, f"{path.name} is {path.stat().st_size / 1e6:.2f} MB: shrink its figures"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_widget_metadata_renders(path):
    notebook = json.loads(path.read_text())
    views = {output["data"][WIDGET_VIEW]["model_id"] for _, output in outputs(path)
             if WIDGET_VIEW in output.get("data", {})}
    widgets = notebook["metadata"].get("widgets")
    if widgets is None:
        assert not views, "outputs show widgets but the notebook keeps no widget state"
        return
    state = widgets.get(WIDGET_STATE, {})
    assert isinstance(state.get("state"), dict) and "version_major" in state, \
        "metadata.widgets has no 'state': strip it or save the widget state"
    missing = views - set(state["state"])
    assert not missing, f"outputs point at widgets whose state is missing: {sorted(missing)[:3]}"


def test_the_rules_catch_what_they_are_for():
    """Each pattern fails on what it is for, so the tests above can fail."""
    assert WARNING.search("RuntimeWarning: covariance is not symmetric positive-semidefinite")
    assert not WARNING.search("warnings are filtered")
    assert OBJECT_REPR.search("<Axes: title={'center': 'x'}>") and OBJECT_REPR.search("<Figure size 640x480 with 1 Axes>")
    assert OBJECT_REPR.search("<helpers.gans.Generator object at 0x7f>")
    assert not OBJECT_REPR.search("   loss  step\n0  1.2  0")
