"""Build the course as a static website from the executed notebooks: build/site/index.html.

    python scripts/build_site.py          # or: make site (which makes its own venv from requirements-site.txt)

Sphinx with MyST-NB renders each chapter notebook with its committed outputs (nothing is executed), with
chapter navigation (sphinx-book-theme) and Sphinx's search. The sources are assembled in build/site-src/:
the notebooks, the course's images they link to, and an index made from the README's opening.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE, SITE = REPO / "build" / "site-src", REPO / "build" / "site"

CONF = '''project = "Generative AI, by doing"
extensions = ["myst_nb"]
html_theme = "sphinx_book_theme"
html_title = project
nb_execution_mode = "off"  # the notebooks are committed executed: the site shows those outputs
myst_enable_extensions = ["dollarmath", "amsmath"]
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]
exclude_patterns = ["_build"]
'''


def index_page(readme: str, chapters: list[Path]) -> str:
    """The README's title and introduction, then the chapters' table of contents."""
    opening = readme.split("\n## ", 1)[0]
    opening = re.sub(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)", "", opening)  # badges point off-site
    toc = "\n".join(chapter.stem for chapter in chapters)
    return f"{opening.strip()}\n\n```{{toctree}}\n:caption: Chapters\n:maxdepth: 1\n\n{toc}\n```\n"


def assemble(chapters: list[Path]) -> None:
    shutil.rmtree(SOURCE, ignore_errors=True)
    SOURCE.mkdir(parents=True)
    for chapter in chapters:
        shutil.copy(chapter, SOURCE / chapter.name)
    (SOURCE / "conf.py").write_text(CONF)
    (SOURCE / "index.md").write_text(index_page((REPO / "README.md").read_text(), chapters))


def main() -> None:
    chapters = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assemble(chapters)
    shutil.rmtree(SITE, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(SOURCE), str(SITE)], check=True)
    print(f"site: {SITE / 'index.html'} ({len(chapters)} chapters)")


if __name__ == "__main__":
    main()
