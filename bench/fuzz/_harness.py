"""The one atheris main every ``fuzz_<target>.py`` calls."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["focus", "mikey", "tests.fuzz"]):
    from tests.fuzz._targets import TARGETS


def main(name: str) -> None:
    """Fuzz ``TARGETS[name]``; libFuzzer flags (``-max_total_time=N``, a corpus dir) come
    from the command line."""
    target = TARGETS[name]

    def one_input(data: bytes) -> None:
        target(data)

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
