"""The pure layers stay pure at run time, not only in the import graph."""

import subprocess
import sys

import pytest

PURE = [
    "mikey",
    "policies",
    "focus.sip",
    "focus.sdp",
    "focus.msrp",
    "focus.keying",
    "focus.config",
    "focus.conference",
    "focus.roster",
    "focus.refer",
]


@pytest.mark.parametrize("package", PURE)
def test_pure_package_does_not_load_twisted(package: str) -> None:
    """Importing a pure core in a fresh interpreter loads neither Twisted nor OpenSSL."""
    probe = (
        f"import sys, importlib; importlib.import_module({package!r}); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('twisted', 'treq', 'OpenSSL'));"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
