"""The repository URL lives in pyproject.toml alone; every Colab badge and set-up cell agrees with it."""

import re
import sys

import pytest

from conftest import NOTEBOOKS, REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import set_repository_url  # noqa: E402  (scripts/ is not a package)

URL = set_repository_url.repository_url()
SLUG = set_repository_url.owner_and_name(URL)


@pytest.mark.parametrize("path", [*NOTEBOOKS, REPO_ROOT / "notebooks" / "_template.ipynb", REPO_ROOT / "README.md"],
                         ids=lambda path: path.stem)
def test_badges_and_clone_lines_point_at_the_one_url(path):
    text = path.read_text()
    badges = re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/", text)
    clones = re.findall(r"git clone -q --depth 1 https://github\.com/([\w.-]+/[\w.-]+)", text)
    binders = re.findall(r"mybinder\.org/v2/gh/([\w.-]+/[\w.-]+)/", text)
    assert badges, f"{path.name} has no Colab badge"
    assert set(badges + clones + binders) == {SLUG}, f"{path.name}: run make repository-url"
    if path.name == "README.md":
        assert binders, "the README has no Binder badge"
    if path.suffix == ".ipynb":
        assert clones, f"{path.name} has no Colab set-up cell"


def test_rewrite_points_badges_and_clones_elsewhere():
    cell = ("[![Open In Colab](x)](https://colab.research.google.com/github/a/b/blob/main/notebooks/00.ipynb)\n"
            "    !git clone -q --depth 1 https://github.com/a/b /content/genai-course\n"
            "[![Binder](y)](https://mybinder.org/v2/gh/a/b/HEAD?urlpath=lab/tree/notebooks)\n")
    rewritten = set_repository_url.rewrite(cell, "https://github.com/our-school/genai")
    assert "github/our-school/genai/blob/main/notebooks/00.ipynb" in rewritten
    assert "https://github.com/our-school/genai /content/genai-course" in rewritten
    assert "mybinder.org/v2/gh/our-school/genai/HEAD" in rewritten


def test_a_url_colab_cannot_open_is_refused():
    with pytest.raises(ValueError, match="GitHub repository URL"):
        set_repository_url.owner_and_name("https://gitlab.com/a/b")
