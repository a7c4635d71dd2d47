"""Recording each chapter's measured results into ``results/<notebook>.json``.

    helpers.record_results("01_gans", {"fid_dcgan": 4.1}, cfg)

writes the metrics with the seconds since ``helpers.setup()`` and the peak
resident memory of the kernel (and its child processes), so ``make report``
can put every chapter's figures in one table.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from helpers import config

REPO_ROOT = config.REPO_ROOT


def results_dir() -> Path:
    """``$GENAI_RESULTS_DIR``, else ``results/`` at the repository root (or the working directory)."""
    if os.environ.get("GENAI_RESULTS_DIR"):
        return Path(os.environ["GENAI_RESULTS_DIR"])
    root = REPO_ROOT if (REPO_ROOT / "notebooks").is_dir() else Path.cwd()
    return root / "results"


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its finished children, in MB."""
    scale = 1 / 2**20 if sys.platform == "darwin" else 1 / 1024  # bytes on macOS, KB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) * scale, 1)


def _plain(value):
    """Metrics as JSON-ready numbers (numpy and torch scalars included), checked finite."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return value
    number = float(value.item() if hasattr(value, "item") else value)
    if not math.isfinite(number):
        raise ValueError(f"metric value {value!r} is not finite")
    return int(number) if isinstance(value, (bool, int)) else round(number, 4)


def record_results(notebook: str, metrics: Mapping, cfg: config.Config) -> dict:
    """Write ``results/<notebook>.json`` and return what was written."""
    if config.started_at is None:
        raise RuntimeError("Call helpers.setup() at the top of the notebook first.")
    record = {
        "notebook": notebook,
        "profile": cfg.profile,
        "seconds": round(time.time() - config.started_at, 1),
        "peak_rss_mb": peak_rss_mb(),
        "metrics": _plain(metrics),
    }
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{notebook}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"recorded {notebook}: {record['seconds']} s, peak RSS {record['peak_rss_mb']} MB")
    return record
