"""Every chapter notebook follows COURSE.md's anatomy, was executed top to bottom, and leaks nothing."""

import json
import re

import pytest

from conftest import NOTEBOOKS, REPO_ROOT
from test_colab_setup import colab_commands

SECRET_PATTERNS = [
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,}"),  # Anthropic
    re.compile(r"sk-(proj-)?[A-Za-z0-9_\-]{32,}"),  # OpenAI
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS
    re.compile(r"hf_[A-Za-z0-9]{30,}"),  # Hugging Face
    re.compile(r"xi-api-key\s*[:=]\s*['\"][0-9a-f]{32}"),  # ElevenLabs
]


def load(path):
    return json.loads(path.read_text())


def text_of(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def outputs_text(cell):
    parts = []
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        for key, value in output.get("data", {}).items():
            if key.startswith("text/"):
                parts.append("".join(value))
    return "\n".join(parts)


def test_there_are_notebooks():
    assert any(path.name == "00_setup_and_tour.ipynb" for path in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_anatomy(path):
    cells = load(path)["cells"]
    markdown = [text_of(cell) for cell in cells if cell["cell_type"] == "markdown"]
    code = [text_of(cell) for cell in cells if cell["cell_type"] == "code"]
    title = text_of(cells[0])
    number = path.stem[:2]
    assert cells[0]["cell_type"] == "markdown" and title.startswith(f"# Chapter {number} — ")
    assert "colab.research.google.com/github/" in title and f"notebooks/{path.name}" in title
    assert "What you need" in title
    headings = [line for text in markdown for line in text.splitlines() if line.startswith("## ")]
    for required in ("## Learning objectives", "## Set-up", "## Exercises", "## Summary"):
        assert any(heading.startswith(required) for heading in headings), f"missing {required}"
    assert any("cfg = helpers.setup(" in source for source in code), "no set-up cell"
    assert any(f'record_results("{path.stem}"' in source for source in code), "results not recorded"
    assert any("def check" in source for source in code), "exercises need an assert-based check function"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_executed_in_order_without_errors(path):
    code = [cell for cell in load(path)["cells"] if cell["cell_type"] == "code" and text_of(cell).strip()]
    counts = [cell.get("execution_count") for cell in code]
    assert None not in counts, "some code cells were not executed: run make execute"
    assert counts == list(range(1, len(counts) + 1)), f"not executed top to bottom once: {counts}"
    errors = [output for cell in code for output in cell.get("outputs", []) if output["output_type"] == "error"]
    assert not errors, f"error outputs: {[error['ename'] for error in errors]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_no_secrets(path):
    for cell in load(path)["cells"]:
        for text in (text_of(cell), outputs_text(cell)):
            for pattern in SECRET_PATTERNS:
                assert not pattern.search(text), f"secret-like string ({pattern.pattern}) in {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_results_exist(path):
    record = json.loads((REPO_ROOT / "results" / f"{path.stem}.json").read_text())
    assert record["profile"] == "small" and record["metrics"]


def package_name(requirement: str) -> str:
    """A requirement's project name as pip compares them (PEP 503): 'NeMo_Guardrails>=1' -> 'nemo-guardrails'."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group()).lower()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_colab_installs_pins_from_the_requirements_files(path):
    """The Colab set-up cell installs from the requirements files, so each pin lives in one place: no package that
    requirements-no-deps.txt pins is named on a pip line there, and a --no-deps install reads that file."""
    no_deps = {package_name(line) for line in (REPO_ROOT / "requirements-no-deps.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for line in colab_commands(path):
        words = line.split()
        if "pip" in words[0] and "install" in words:
            after = words[words.index("install") + 1:]
            named = {package_name(word) for before, word in zip(["install", *after], after)
                     if before != "-r" and not word.startswith("-") and re.match(r"[A-Za-z0-9]", word)}
            assert not named & no_deps, f"{path.name} pins {named & no_deps} by hand: use -r requirements-no-deps.txt"
            if "--no-deps" in words:
                assert "/content/genai-course/requirements-no-deps.txt" in after, line
