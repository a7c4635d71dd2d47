"""The student edition (scripts/student_edition.py): no solution left, every exercise a stub with a hint.

The instructor run under nbval proves the other half: each solution cell calls
``helpers.exercises.expect_stub_fails`` (the check fails on the stub, with its hint) and then the check
on the solution (it passes).
"""

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import student_edition  # noqa: E402

NOTEBOOKS = student_edition.chapter_notebooks()
STUB = re.compile(r"raise NotImplementedError\(\s*\"[^\"]+")  # a stub that raises with a hint


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    student_edition.write_edition(out, NOTEBOOKS)
    return out


def sources(path: Path) -> list[tuple[dict, str]]:
    return [(cell, "".join(cell["source"])) for cell in json.loads(path.read_text())["cells"]]


def test_every_chapter_has_a_student_notebook(edition):
    assert len(NOTEBOOKS) == 11 and sorted(p.name for p in edition.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_no_solution_is_left_and_every_exercise_is_a_stub_with_a_hint(edition, notebook):
    cells = sources(edition / notebook.name)
    assert not [c for c, _ in cells if student_edition.is_solution(c)], "a cell tagged solution is left"
    assert not [s for _, s in cells if re.search(r"def \w+_solution\(", s)], "solution code is left"
    exercises = [(c, s) for c, s in cells if student_edition.is_exercise(c)]
    for cell, source in exercises:
        assert STUB.search(source), f"an exercise of {notebook.stem} has no stub raising NotImplementedError('hint')"
        assert cell["metadata"]["nbgrader"]["solution"] is True


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_each_check_is_proven_to_fail_on_its_stub_in_the_instructor_notebook(notebook):
    cells = sources(notebook)
    checks = {name for _, s in cells for name in student_edition.CHECK.findall(s)}
    solutions = "\n".join(s for c, s in cells if student_edition.is_solution(c))
    for name in checks:
        assert re.search(rf"expect_stub_fails\({name},", solutions), \
            f"{notebook.stem}: no solution cell calls expect_stub_fails({name}, ...)"


def test_chapter_00_student_edition_runs_top_to_bottom(edition, tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_RESULTS_DIR", str(tmp_path))  # its results stay out of results/
    notebook = nbformat.read(edition / "00_setup_and_tour.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(edition)}}).execute()
    assert any("The solution is in the instructor edition" in "".join(c["source"]) for c in notebook.cells)
