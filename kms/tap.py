"""`twistd kms`: command-line options and the service (named by the plugin drop-in).

    twistd -n kms --config kms.toml

The configuration format is documented on kms.load_config. SIGHUP reloads the accounts.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from twisted.application.service import IService
from twisted.python import usage

from ._config import KmsConfig, load_config
from ._errors import ConfigError

__all__ = ["Options", "makeService"]


class Options(usage.Options):
    synopsis = "--config kms.toml"
    longdesc = (
        "Run the reference MIKEY-TICKET KMS (RFC 6043 base tickets over HTTPS, "
        "PROFILE.md section 3). SIGHUP reloads the [[account]] tables of the config file."
    )
    optParameters: ClassVar[list[list[Any]]] = [
        ["config", "c", "kms.toml", "The KMS configuration file (TOML)."]
    ]

    kms_config: KmsConfig

    def postOptions(self) -> None:
        # Load here so that a bad file is a usage error twistd prints before starting.
        try:
            self.kms_config = load_config(self["config"])
        except ConfigError as e:
            raise usage.UsageError(str(e)) from e


def makeService(options: Any) -> IService:
    from twisted.internet import reactor

    from ._service import make_service

    service = make_service(options.kms_config, reactor=reactor, handle_sighup=True)
    return cast(IService, service)
