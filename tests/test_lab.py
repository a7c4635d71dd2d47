"""`make lab` opens JupyterLab: start the server on 127.0.0.1, list the notebooks through its API, stop it."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

from conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_jupyterlab_serves_the_notebooks(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={REPO_ROOT}", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path)},
    )
    try:
        names, deadline = None, time.time() + 60
        while names is None and time.time() < deadline:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/api/contents/notebooks",
                                                 headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    names = [item["name"] for item in json.load(response)["content"]]
            except OSError:
                assert server.poll() is None, "JupyterLab exited early"
                time.sleep(0.5)
        assert names and "00_setup_and_tour.ipynb" in names
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5) as response:
            assert response.status == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
