"""Recording each chapter's measured results into ``results/<notebook>.json``.

    helpers.record_results("01_gans", {"fid_dcgan": 4.1}, cfg)

writes the metrics with the seconds since ``helpers.setup()`` (wall and CPU) and
the peak resident memory of the kernel (and its child processes), so ``make
report`` can put every chapter's figures in one table, and checks the small
profile's budget (``SMALL_PROFILE_BUDGET``) for every chapter in one place.
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
# Per notebook, small profile, 2 CPU cores (the course aims at 90 s). CPU seconds rather than wall seconds:
# they do not grow when other programs share the cores (make test also checks wall seconds, on its own run).
SMALL_PROFILE_BUDGET = {"cpu_seconds": 300, "peak_rss_mb": 3000}


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


def cpu_seconds() -> float:
    """CPU seconds (user + system, all threads) of this process and of its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 1)


def check_budget(record: Mapping) -> None:
    """Raise ``AssertionError`` if a small-profile ``record`` is over ``SMALL_PROFILE_BUDGET``."""
    if record["profile"] != "small":
        return  # the full profile downloads and runs GPU models: no CPU budget
    over = {key: record[key] for key, limit in SMALL_PROFILE_BUDGET.items() if record[key] > limit}
    if over:
        raise AssertionError(f"{record['notebook']} is over the small profile's budget {SMALL_PROFILE_BUDGET}: "
                             f"{over}. Shrink the small profile's constants (cfg.pick) or speed up the slowest cell.")


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
    """Write ``results/<notebook>.json``, check the small profile's budget, and return what was written."""
    if config.started_at is None:
        raise RuntimeError("Call helpers.setup() at the top of the notebook first.")
    record = {
        "notebook": notebook,
        "profile": cfg.profile,
        "seconds": round(time.time() - config.started_at, 1),
        "cpu_seconds": cpu_seconds(),
        "peak_rss_mb": peak_rss_mb(),
        "metrics": _plain(metrics),
    }
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{notebook}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"recorded {notebook}: {record['seconds']} s ({record['cpu_seconds']} s of CPU), "
          f"peak RSS {record['peak_rss_mb']} MB")
    check_budget(record)
    return record
