"""The drift check: the course against the newest release of every dependency, with a report of what broke.

    python scripts/test_latest.py [--unit-only]     # or: make test-latest  (weekly in .github/workflows/latest.yml)

Builds build/latest-venv with every package of requirements.txt and requirements-course.txt at its newest
release (the version bounds dropped; requirements-no-deps.txt stays pinned), runs the unit tests and every
notebook under nbval there, and writes build/latest/report.md: the packages now newer than the tested
ranges, and each failing test with the first line of its error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent
VENV, OUT = REPO / "build" / "latest-venv", REPO / "build" / "latest"
REQUIREMENT_FILES = [REPO / "requirements.txt", REPO / "requirements-course.txt"]


def requirements(files: list[Path] = REQUIREMENT_FILES) -> list[Requirement]:
    """The packages the course pins (``-r`` and ``-e`` lines are followed or skipped)."""
    found = []
    for path in files:
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                found.append(Requirement(line))
    return found


def installed_versions(python: Path) -> dict[str, str]:
    frozen = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True,
                            text=True).stdout
    return {name.lower().replace("_", "-"): version for name, version in
            (line.split("==", 1) for line in frozen.splitlines() if "==" in line)}


def failures(junit: Path) -> list[tuple[str, str]]:
    """(test, first line of its error) for each failed or errored test of a JUnit XML report."""
    if not junit.exists():
        return [("(the run wrote no report)", "see the log next to the report")]
    found = []
    for case in ElementTree.parse(junit).iter("testcase"):
        for problem in [*case.iter("failure"), *case.iter("error")]:
            message = (problem.get("message") or problem.text or "").strip().splitlines()
            found.append((f"{case.get('classname')}::{case.get('name')}", message[0][:200] if message else ""))
    return found


def report(pinned: list[Requirement], versions: dict[str, str], runs: dict[str, Path]) -> str:
    drifted = [(r.name, str(r.specifier), versions.get(r.name.lower().replace("_", "-"), "?")) for r in pinned
               if versions.get(r.name.lower().replace("_", "-")) and
               versions[r.name.lower().replace("_", "-")] not in r.specifier]
    lines = ["# Drift check: the newest release of every dependency", "",
             "| package | tested range | newest |", "|---|---|---|"]
    lines += [f"| {name} | `{spec}` | {version} |" for name, spec, version in drifted] or ["| (none) | | |"]
    for label, junit in runs.items():
        broken = failures(junit)
        lines += ["", f"## {label}: {len(broken)} failing", ""]
        lines += [f"- `{test}`: {' '.join(message.split())}" for test, message in broken]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--unit-only", action="store_true", help="run the unit tests only (not the notebooks)")
    arguments = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    pinned = requirements()
    python = VENV / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
    pip = [python, "-m", "pip", "install", "--quiet", "--upgrade"]
    subprocess.run([*pip, "pip"], check=True)
    subprocess.run([*pip, *sorted({r.name for r in pinned})], check=True)  # no bounds: the newest of each
    subprocess.run([*pip, "--no-deps", "-e", REPO, "-r", REPO / "requirements-no-deps.txt"], check=True)
    runs = {"unit tests": OUT / "unit.xml"}
    subprocess.run([python, "-m", "pytest", "tests", "-q", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider",
                    "-m", "not after_notebooks and not tiny_hub and not colab_replay", f"--junitxml={runs['unit tests']}"],
                   cwd=REPO)
    if not arguments.unit_only:
        runs["notebooks"] = OUT / "notebooks.xml"
        notebooks = sorted(str(p) for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        subprocess.run([python, "-m", "pytest", "--nbval-lax", "--nbval-cell-timeout=600", "-q", "-n", "2",
                        "--dist", "loadfile", "-p", "no:cacheprovider", f"--junitxml={runs['notebooks']}", *notebooks],
                       cwd=REPO, env={**os.environ, "GENAI_RESULTS_DIR": str(OUT / "results")})
    text = report(pinned, installed_versions(python), runs)
    (OUT / "report.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
