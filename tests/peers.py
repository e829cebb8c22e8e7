"""Programs we did not write that the interop tests use as independent peers."""

from __future__ import annotations

import glob
import os
import shutil


def python313() -> str:
    """A Python >= 3.13 interpreter: its stdlib ``ssl`` has TLS-PSK callbacks.

    The stock image has it under pyenv; ``PYTHON313`` overrides. A missing interpreter is
    an error, not a skip: the interop tests must run.
    """
    override = os.environ.get("PYTHON313")
    if override:
        return override
    # pyenv's own interpreters first: its python3.13 *shim* is on PATH even when the
    # selected version makes it refuse to run.
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(os.path.join(root, "versions", "3.1[3-9]*", "bin", "python3")))
    if candidates:
        return candidates[-1]
    found = shutil.which("python3.13")
    if found:
        return found
    raise RuntimeError("Python 3.13 (stdlib ssl with PSK callbacks) not found; set PYTHON313")
