"""Write the student edition of the course: every chapter notebook without its solution cells.

    python scripts/student_edition.py [--out student]     # or: make student

A solution cell carries the cell tag ``solution`` (see ``helpers.exercises``); it is replaced by a short note.
Everything else stays as the instructor notebook has it, outputs included: the figures and measured numbers
are part of the lesson, and a student compares their own run with them. Exercise cells (a ``check_*``
function and a stub that raises ``NotImplementedError`` with a hint) get nbgrader's metadata, so a course
that grades with nbgrader can use the edition as its source.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOLUTION_TAG = "solution"
REMOVED_NOTE = ("*The solution is in the instructor edition of the course (this is the student edition). "
                "Uncomment the check in the exercise cell above to test your answer.*")
CHECK = re.compile(r"^def (check_\w+)\(", re.MULTILINE)


def chapter_notebooks(folder: Path = REPO / "notebooks") -> list[Path]:
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def is_solution(cell: dict) -> bool:
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def is_exercise(cell: dict) -> bool:
    return cell["cell_type"] == "code" and bool(CHECK.search("".join(cell["source"])))


def student_notebook(notebook: dict, name: str) -> dict:
    """The notebook with each solution cell replaced by a note, and nbgrader metadata on its exercise cells."""
    cells, exercises = [], 0
    for cell in notebook["cells"]:
        if is_solution(cell):
            cells.append({"cell_type": "markdown", "id": cell.get("id", "solution") + "-removed", "metadata": {},
                          "source": [REMOVED_NOTE]})
            continue
        if is_exercise(cell):
            exercises += 1
            cell = {**cell, "metadata": {**cell["metadata"], "nbgrader": {
                "grade": False, "grade_id": f"{name}-exercise-{exercises}", "locked": False, "solution": True,
                "schema_version": 3}}}
        cells.append(cell)
    return {**notebook, "cells": cells}


def write_edition(out: Path, notebooks: list[Path]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        edition = student_notebook(json.loads(path.read_text()), path.stem)
        target = out / path.name
        target.write_text(json.dumps(edition, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "student", help="folder to write (default: student/)")
    arguments = parser.parse_args(argv)
    written = write_edition(arguments.out, chapter_notebooks())
    print(f"student edition: {len(written)} notebooks in {arguments.out}")


if __name__ == "__main__":
    main()
