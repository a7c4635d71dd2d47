"""Gather every chapter's ``results/*.json`` into one table in README.md (``make report``)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.results import REPO_ROOT, results_dir

START = "<!-- results:start -->"
END = "<!-- results:end -->"


def _format(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {_format(item)}" for key, item in value.items())
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def results_table(folder: Path) -> str:
    """A markdown table: one row per chapter, with time, memory and headline metrics."""
    rows = ["| notebook | profile | seconds | peak RSS (MB) | metrics |", "|---|---|---|---|---|"]
    for path in sorted(folder.glob("[0-9][0-9]_*.json")):  # chapters only (not llm_server_bench.json)
        record = json.loads(path.read_text())
        metrics = "; ".join(f"{name} {_format(value)}" for name, value in record["metrics"].items())
        rows.append(f"| {record['notebook']} | {record['profile']} | {record['seconds']:.0f} "
                    f"| {record['peak_rss_mb']:.0f} | {metrics} |")
    return "\n".join(rows)


def update_readme(readme: Path, table: str) -> None:
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} markers to put the table between")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    update_readme(REPO_ROOT / "README.md", results_table(results_dir()))
    print(f"README.md results table updated from {results_dir()}")
