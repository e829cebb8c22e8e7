"""`twistd focus`: command-line options and the service (named by the plugin drop-in).

    twistd -n focus --config focus.toml

The configuration format is documented in ``focus/focus.example.toml``. SIGHUP reloads
the policy file without dropping calls. Readiness: the event log line ``ready`` (JSON
``"event": "ready"``) once every SIP listener is up.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from twisted.application.service import IService
from twisted.python import usage

from focus.config import ConfigError, FocusConfig, load_config

__all__ = ["Options", "makeService"]


class Options(usage.Options):
    synopsis = "--config focus.toml"
    longdesc = (
        "Run the MSRP conference focus: SIP dial-in to chat rooms, one MIKEY-TICKET keyed "
        "TLS-PSK MSRP leg per participant, RFC 7701 relaying. SIGHUP reloads the policy."
    )
    optParameters: ClassVar[list[list[Any]]] = [
        ["config", "c", "focus.toml", "The focus configuration file (TOML)."]
    ]

    focus_config: FocusConfig

    def postOptions(self) -> None:
        # Load here so that a bad file (or policy) is a usage error printed before start.
        try:
            self.focus_config = load_config(self["config"])
        except ConfigError as e:
            raise usage.UsageError(str(e)) from e
        from policies import PolicyError, load_policy

        try:
            load_policy(self.focus_config.policy_file)
        except PolicyError as e:
            raise usage.UsageError(str(e)) from e


def makeService(options: Any) -> IService:
    from twisted.internet import reactor

    from focus.service import make_service

    return cast(IService, make_service(options.focus_config, reactor=reactor, handle_sighup=True))
