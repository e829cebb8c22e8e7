"""`twistd kms`: the plugin is found, options load the config, errors are usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python import usage

from kms import KmsService
from kms.tap import Options, makeService


def test_plugin_is_a_lazy_service_maker_naming_kms_tap() -> None:
    """twistd finds a `kms` ServiceMaker that points at kms.tap."""
    makers = {m.tapname: m for m in getPlugins(IServiceMaker)}
    assert "kms" in makers
    assert makers["kms"].module == "kms.tap"


def test_options_load_the_config_and_make_the_service(tmp_path: Path) -> None:
    """--config loads the file; makeService returns a KmsService for it (not started)."""
    path = tmp_path / "kms.toml"
    path.write_text('identity = "sip:kms@example.net"\nlisten = "ssl:0:interface=127.0.0.1"\n')
    options = Options()
    options.parseOptions(["--config", str(path)])
    service = makeService(options)
    assert isinstance(service, KmsService)
    assert service.config.identity == "sip:kms@example.net"


def test_bad_config_is_a_usage_error_naming_file_and_line(tmp_path: Path) -> None:
    """A broken config stops twistd before start with file:line: key: reason."""
    path = tmp_path / "kms.toml"
    path.write_text('identity = "sip:kms@example.net"\nlisten = "udp:5"\n')
    with pytest.raises(usage.UsageError, match=r"kms\.toml:2: listen: endpoint type"):
        Options().parseOptions(["--config", str(path)])
