"""Train the long runs of chapter 01's GANs: data/gans/<model>.pt (small profile, 16x16 digits).

    python scripts/train_gans.py      # or: make checkpoints   (about 10 minutes on 2 CPU cores)

"Train live, then load": the notebook trains each GAN for a short live run, then loads the long run
of the same model from data/gans/. This script makes those files by executing notebooks/01_gans.ipynb
itself with GENAI_TRAIN_CHECKPOINTS=1, so the notebook's own code (models, losses, `train_gan`,
`long_run`) trains them from the chapter's seed, and the notebook's own asserts (FID bars, class
accuracy) check the result before this script reports success. Deterministic on the CPU: same code,
same seed, same weights. Results of this run go to build/train_gans/, not to results/.
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO_ROOT / "notebooks" / "01_gans.ipynb"
CHECKPOINT_DIR = REPO_ROOT / "data" / "gans"
MODELS = ("vanilla", "dcgan", "cgan", "wgan_gp", "stylegan")
MAX_BYTES = 5 * 2**20


def main() -> None:
    start = time.time()
    os.environ.update(GENAI_TRAIN_CHECKPOINTS="1", GENAI_PROFILE="small",
                      GENAI_RESULTS_DIR=str(REPO_ROOT / "build" / "train_gans"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Raises CellExecutionError (with the failing cell) if any of the notebook's asserts fails.
    NotebookClient(notebook, timeout=3600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    for model in MODELS:
        path = CHECKPOINT_DIR / f"{model}.pt"
        assert path.is_file(), f"{path} was not written"
        assert path.stat().st_size < MAX_BYTES, f"{path} is {path.stat().st_size / 2**20:.1f} MB (limit 5 MB)"
        print(f"{path.relative_to(REPO_ROOT)}: {path.stat().st_size / 2**20:.2f} MB")
    print(f"checkpoints trained and checked by the notebook's asserts in {time.time() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
