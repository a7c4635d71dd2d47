"""helpers.models is the one registry of model ids: pinned, used by the notebooks, all built by the tiny hub."""

import json
import re

import pytest

from conftest import NOTEBOOKS
from helpers import config, models

PLAIN_IDS = [models.WHISPER_LARGE, models.WHISPER_TURBO, models.TACOTRON2, models.XTTS_V2,
             models.ANTHROPIC_MODEL, models.OPENAI_MODEL, models.OPENAI_MODERATION_MODEL,
             models.OPENAI_FINE_TUNE_BASE, *models.PRICES_PER_MILLION]


def code_of(path):
    """The notebook's code without comments (prose may name a model; code takes it from the registry)."""
    cells = json.loads(path.read_text())["cells"]
    lines = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code").splitlines()
    return "\n".join(line.split("#", 1)[0] for line in lines)


def test_every_hub_model_is_pinned_to_a_commit():
    for model in models.HUB_MODELS + (models.MINILM,):
        assert re.fullmatch(r"[0-9a-f]{40}", model.revision), model
        assert model.library in ("diffusers", "transformers", "sentence-transformers"), model


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebooks_take_model_ids_from_the_registry(path):
    code = code_of(path)
    for model_id in [model.repo_id for model in models.HUB_MODELS] + PLAIN_IDS:
        assert f'"{model_id}"' not in code and f"'{model_id}'" not in code, (
            f"{path.name} spells out {model_id!r}: use helpers.models")


@pytest.mark.tiny_hub
def test_the_tiny_hub_holds_every_hub_model_at_its_revision():
    hub = config.tiny_hub_environment(config.tiny_hub_dir())["HF_HUB_CACHE"]
    for model in models.HUB_MODELS:
        snapshot = config.Path(hub) / f"models--{model.repo_id.replace('/', '--')}" / "snapshots" / model.revision
        assert snapshot.is_dir() and any(snapshot.iterdir()), f"make tiny-hub did not build {model.repo_id}"
