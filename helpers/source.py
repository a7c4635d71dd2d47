"""Showing the course's own code in a notebook, read from the module that runs it.

A chapter's models and training loops live once, in ``helpers/<topic>.py``: the notebook
imports them, and shows the definitions it teaches with ``show_source``, so that what the
student reads is exactly what runs (and what ``scripts/`` trains the checkpoints with).
"""

from __future__ import annotations

import inspect

from IPython.display import Code, display


def source_of(*definitions) -> str:
    """The source code of functions, classes or modules, separated by blank lines."""
    return "\n\n".join(inspect.getsource(definition).rstrip() for definition in definitions) + "\n"


def show_source(*definitions) -> None:
    """Display the source of ``definitions`` as highlighted Python: ``show_source(gans.train_gan)``."""
    display(Code(source_of(*definitions), language="python"))
