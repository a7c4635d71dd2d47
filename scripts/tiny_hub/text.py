"""Tiny-hub builder: TODO (being written)."""

from __future__ import annotations


def build(environment: dict[str, str]) -> None:
    """Write this family's tiny checkpoints into the caches that ``environment`` names."""
