"""Replay of the Colab set-up cell (make test-colab): Colab's own torch is kept, and chapter 00 runs.

Colab comes with PyTorch installed; the first cell of every chapter clones the course and installs
``requirements-course.txt`` beside it. This test builds a fresh virtual environment that already holds
the oldest torch / torchvision of the README's tested range, replays the cell's own commands (the clone
from this checkout's committed HEAD instead of GitHub, a temporary folder instead of /content), then runs
chapter 00 under nbval there, and checks that torch was not replaced. It downloads about 3 GB (a CUDA
build of torch 2.6 from PyPI) and takes several minutes: it is not part of make test.
"""

import json
import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.colab_replay

COLAB_TORCH = ("torch==2.6.0", "torchvision==0.21.0")  # the oldest pair of the range the README states
CHAPTER = REPO_ROOT / "notebooks" / "00_setup_and_tour.ipynb"


def colab_commands(notebook) -> list[str]:
    """The shell (``!``) and ``%pip`` lines of the notebook's ``if "google.colab" in sys.modules:`` block."""
    cells = json.loads(notebook.read_text())["cells"]
    setup = next("".join(cell["source"]) for cell in cells
                 if cell["cell_type"] == "code" and '"google.colab" in sys.modules' in "".join(cell["source"]))
    block = setup.split('"google.colab" in sys.modules:', 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip().startswith(("!", "%pip"))]


def run(command: list[str], **options) -> str:
    done = subprocess.run(command, capture_output=True, text=True, **options)
    assert done.returncode == 0, f"{shlex.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_colab_setup_cell_keeps_colabs_torch_and_chapter_00_runs(tmp_path):
    venv = tmp_path / "colab-venv"
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(python), "-m", "pip", "install", "-q", *COLAB_TORCH])
    before = run([str(python), "-c", "import torch; print(torch.__version__)"]).strip()

    content = tmp_path / "content"
    content.mkdir()
    commands = colab_commands(CHAPTER)
    assert any("git clone" in line for line in commands) and any("requirements-course.txt" in line for line in commands)
    for line in commands:
        line = re.sub(r"https://github\.com/\S+", REPO_ROOT.as_uri(), line).replace("/content", str(content))
        if line.startswith("!"):
            run(shlex.split(line[1:]))
        else:  # %pip install ... -> this venv's pip
            run([str(python), "-m", "pip", *shlex.split(line)[1:]])

    course = content / "genai-course"
    after = run([str(python), "-c", "import torch; print(torch.__version__)"]).strip()
    assert after == before, f"the set-up cell replaced Colab's torch {before} with {after}"
    environment = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(course), "GENAI_PROFILE": "small",
                   "GENAI_RESULTS_DIR": str(tmp_path / "results"), "HOME": str(tmp_path)}
    run([str(python), "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
         str(course / "notebooks" / CHAPTER.name)], cwd=course / "notebooks", env=environment)
