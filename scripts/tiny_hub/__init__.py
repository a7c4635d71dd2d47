"""The tiny hub: random-weight, tiny-config checkpoints saved at the course's real model ids.

Each module of this package builds one family of models (``diffusion``, ``vision_language``,
``text``, ``speech``, ``data``) with the libraries' own ``save_pretrained`` (or what a non-Hugging
Face loader looks for), into the cache layout of ``helpers.config.tiny_hub_environment``. The
notebooks' unchanged ``from_pretrained(models.FLUX_SCHNELL.repo_id, ...)`` then resolves offline.
Nothing here is trained; ``scripts/build_tiny_hub.py`` runs every builder.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from helpers.models import HubModel

COMMIT = re.compile(r"[0-9a-f]{40}")


def commit_of(model: HubModel) -> str:
    """The snapshot's commit: the pinned revision, or a stand-in derived from the id for ``"main"``."""
    if COMMIT.fullmatch(model.revision):
        return model.revision
    return hashlib.sha1(f"tiny-hub:{model.repo_id}".encode()).hexdigest()


def snapshot(hub_cache: Path, model: HubModel) -> Path:
    """An empty snapshot folder of ``model`` in the Hugging Face cache layout, with its refs written.

    ``models--org--name/refs/main`` (and ``refs/<branch>`` for a branch revision) name the commit;
    ``snapshots/<commit>/`` holds the files, as ``huggingface_hub`` lays out a download."""
    repo = hub_cache / f"models--{model.repo_id.replace('/', '--')}"
    commit = commit_of(model)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    if not COMMIT.fullmatch(model.revision) and model.revision != "main":
        (repo / "refs" / model.revision).write_text(commit)
    folder = repo / "snapshots" / commit
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def save_to_hub(hub_cache: Path, model: HubModel, *parts) -> Path:
    """``save_pretrained`` each of ``parts`` (a model, a tokenizer, a processor, a pipeline) into ``model``'s snapshot."""
    folder = snapshot(hub_cache, model)
    for part in parts:
        part.save_pretrained(folder)
    return folder
