"""The keyed path: run notebooks as a student with API keys would, against a stand-in for the real APIs.

    python scripts/run_keyed_smoke.py notebooks/08_llm_apis_prompting.ipynb ...   # make test-full-smoke runs it

Starts ``python -m helpers.llm_server --stand-in`` (SmolLM2 answering as the course's real API models),
sets dummy ``ANTHROPIC_API_KEY`` / ``OPENAI_API_KEY`` and the SDKs' ``*_BASE_URL`` to it, and runs the
notebooks under nbval in the full profile on the tiny hub. ``helpers.llm.is_local()`` is then False: the
cells take the branch of a real API. The dummy keys are not secrets and reach nothing but 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the stand-in server exited with code {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the stand-in server did not listen on port {port} within {STARTUP_SECONDS} s")


def main(notebooks: list[str]) -> int:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "helpers.llm_server", "--stand-in", "--port", str(port)])
    try:
        wait_until_listening(port, server)
        environment = dict(
            os.environ,
            GENAI_PROFILE="full",
            GENAI_HUB="tiny",
            ANTHROPIC_API_KEY="dummy-key-for-the-stand-in",
            OPENAI_API_KEY="dummy-key-for-the-stand-in",
            ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}",
            OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
        )
        command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-cell-timeout=600", "-p",
                   "no:cacheprovider", "-q", "-n", "2", "--dist", "loadfile", *notebooks]
        return subprocess.call(command, env=environment)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
