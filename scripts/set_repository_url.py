"""Point every Colab and Binder badge and Colab set-up cell at the course's repository URL (one place: pyproject.toml).

    python scripts/set_repository_url.py https://github.com/ORG/NAME   # or: make repository-url URL=...
    python scripts/set_repository_url.py                               # rewrite from pyproject.toml as it is

Rewrites ``[project.urls] Repository`` in pyproject.toml, then the badges (README.md, each notebook's
first cell) and the ``git clone`` line of each notebook's set-up cell. Outputs are left as they are.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = REPO_ROOT / "pyproject.toml"
GITHUB = re.compile(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?")
BADGE = re.compile(r"colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/")
CLONE = re.compile(r"(git clone -q --depth 1 )https://github\.com/[\w.-]+/[\w.-]+")
BINDER = re.compile(r"mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/")


def repository_url() -> str:
    """The course's repository URL, from pyproject.toml."""
    return tomllib.loads(PYPROJECT.read_text())["project"]["urls"]["Repository"]


def owner_and_name(url: str) -> str:
    match = GITHUB.fullmatch(url)
    if not match:
        raise ValueError(f"{url!r} is not a GitHub repository URL (https://github.com/ORG/NAME): Colab opens only those.")
    return f"{match[1]}/{match[2]}"


def rewrite(text: str, url: str) -> str:
    """``text`` with every Colab and Binder badge and set-up ``git clone`` pointed at ``url``."""
    slug = owner_and_name(url)
    text = BADGE.sub(f"colab.research.google.com/github/{slug}/blob/", text)
    text = BINDER.sub(f"mybinder.org/v2/gh/{slug}/", text)
    return CLONE.sub(lambda match: f"{match[1]}https://github.com/{slug}", text)


def main(arguments: list[str]) -> None:
    url = arguments[0] if arguments else repository_url()
    owner_and_name(url)
    pyproject = PYPROJECT.read_text()
    PYPROJECT.write_text(re.sub(r'(?m)^Repository = ".*"$', f'Repository = "{url}"', pyproject))
    readme = REPO_ROOT / "README.md"
    readme.write_text(rewrite(readme.read_text(), url))
    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            source = "".join(cell["source"])
            cell["source"] = rewrite(source, url).splitlines(keepends=True)
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    print(f"Colab badges and set-up cells now point at {url}")


if __name__ == "__main__":
    main(sys.argv[1:])
