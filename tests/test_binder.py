"""binder/: what repo2docker (BinderHub, JupyterHub images) builds the course from, replayed here.

repo2docker installs binder/apt.txt with apt, binder/requirements.txt with pip, then runs binder/postBuild.
The requirements are the root ones (what make install and CI test); postBuild is replayed in a fresh venv.
"""

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BINDER = REPO / "binder"


def test_binder_installs_what_make_install_does():
    assert (BINDER / "requirements.txt").read_text().split() == ["-r", "../requirements.txt"]
    assert "$(shell cat binder/apt.txt)" in (REPO / "Makefile").read_text()  # one apt list for both
    assert set((BINDER / "apt.txt").read_text().split()) >= {"espeak-ng", "ffmpeg", "sox"}
    assert os.access(BINDER / "postBuild", os.X_OK), "repo2docker runs postBuild only if it is executable"


@pytest.mark.skipif(sys.platform != "linux", reason="postBuild is a bash script for repo2docker's Linux image")
def test_post_build_replayed_in_a_fresh_venv(tmp_path):
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    path = f"{environment / 'bin'}{os.pathsep}{os.environ['PATH']}"  # `pip` is the fresh venv's, as in the image
    subprocess.run(["bash", str(BINDER / "postBuild")], cwd=REPO, check=True, env={**os.environ, "PATH": path},
                   capture_output=True, timeout=600)
    listed = subprocess.run([environment / "bin" / "pip", "list", "--format=freeze"], check=True,
                            capture_output=True, text=True).stdout.lower().split()
    pins = [line.lower() for line in (REPO / "requirements-no-deps.txt").read_text().split() if "==" in line]
    assert pins and all(pin in listed for pin in pins), f"postBuild installed {listed}, expected {pins}"
