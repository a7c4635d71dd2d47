"""Build the tiny hub: random-weight, tiny-config versions of every model in helpers.models.

    python scripts/build_tiny_hub.py        # or: make tiny-hub  (into build/tiny-hub, about a minute)
    python scripts/build_tiny_hub.py --only speech    # one family, in place (while writing a builder)

Then ``GENAI_PROFILE=full GENAI_HUB=tiny`` runs the full profile's code on them (make test-full-smoke).
The weights are random: the hub tests code paths, never results. Nothing of it is committed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

import torch

from helpers.config import tiny_hub_dir, tiny_hub_environment
from tiny_hub import data, diffusion, speech, text, vision_language

BUILDERS = {module.__name__.split(".")[-1]: module for module in (data, diffusion, vision_language, text, speech)}


def build_one(name: str) -> None:
    """Build one family into the existing hub, in place."""
    root = tiny_hub_dir()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    began = time.time()
    BUILDERS[name].build(tiny_hub_environment(root))
    (root / "COMPLETE").write_text("built by scripts/build_tiny_hub.py: random weights, tiny configs\n")
    print(f"{name}: {time.time() - began:.1f} s -> {root}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(BUILDERS), help="build one family, in place")
    arguments = parser.parse_args()
    if arguments.only:
        return build_one(arguments.only)
    root = tiny_hub_dir()
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    environment = {name: value.replace(str(root), str(partial)) for name, value in tiny_hub_environment(root).items()}
    torch.set_num_threads(1)
    torch.manual_seed(0)
    start = time.time()
    for name, builder in BUILDERS.items():
        began = time.time()
        builder.build(environment)
        print(f"{name:>16}: {time.time() - began:5.1f} s", flush=True)
    (partial / "COMPLETE").write_text("built by scripts/build_tiny_hub.py: random weights, tiny configs\n")
    shutil.rmtree(root, ignore_errors=True)
    partial.replace(root)  # a half-built hub is never taken for a whole one
    print(f"tiny hub at {root} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
