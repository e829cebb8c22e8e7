"""The KMS as a Twisted service: listen, serve, reload accounts on SIGHUP."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._accounts import AccountStore
from ._config import KmsConfig, load_accounts
from ._errors import ConfigError
from ._identity import normalise_uri
from ._resource import TicketEngine, build_resource, build_site
from ._tls import TlsFiles, ensure_self_signed

__all__ = ["KmsService", "ReloadableEngine", "make_service", "server_endpoint_description"]


class ReloadableEngine(TicketEngine, Protocol):
    """A ticket engine whose account store can be swapped while it serves."""

    def replace_accounts(self, accounts: AccountStore) -> None: ...


def _escape(value: str) -> str:
    """Escape a value for Twisted's endpoint string syntax (backslash, colon, equals)."""
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def _certificate_names(config: KmsConfig) -> list[str]:
    names = ["localhost", "127.0.0.1", "::1"]
    if config.listen_spec.interface:
        names.append(config.listen_spec.interface)
    host = normalise_uri(config.identity).rsplit("@", 1)[1].strip("[]")
    names.append(host)
    return names


def server_endpoint_description(config: KmsConfig, tls: TlsFiles | None) -> str:
    """The listen string with the TLS files appended when the operator did not name them."""
    if tls is None:
        return config.listen
    key, certificate = _escape(str(tls.key)), _escape(str(tls.certificate))
    return f"{config.listen}:privateKey={key}:certKey={certificate}"


class KmsService(Service):
    """Listens on the configured endpoint and serves the KMS resource.

    `reload_accounts` re-reads the `[[account]]` tables of the configuration file and
    swaps them in whole; a broken file keeps the old accounts and logs why (file:line).
    With `handle_sighup` the service calls it on SIGHUP (installed at start, the previous
    handler restored at stop).
    """

    log = Logger()

    def __init__(
        self,
        config: KmsConfig,
        *,
        reactor: Any,
        engine: ReloadableEngine,
        handle_sighup: bool = False,
    ) -> None:
        self.config = config
        self.engine = engine
        self._reactor = reactor
        self._handle_sighup = handle_sighup
        self._previous_handler: Any = None
        self.port: Any = None  # IListeningPort once listening
        self.tls: TlsFiles | None = None
        self.accounts = config.accounts

    def _tls_files(self) -> TlsFiles | None:
        config = self.config
        if not config.uses_tls or config.listen_spec.has_tls_files:
            return None
        if config.tls_certificate is not None and config.tls_key is not None:
            return TlsFiles(
                certificate=config.tls_certificate, key=config.tls_key, ca=None, created=False
            )
        files = ensure_self_signed(
            config.path, names=_certificate_names(config), now=self._reactor.seconds()
        )
        self.log.info(
            "kms TLS: {state} self-signed server certificate {certificate}; "
            "clients trust the CA file {ca}",
            state="created" if files.created else "using",
            certificate=str(files.certificate.absolute()),
            ca=str(files.ca.absolute()) if files.ca else "-",
        )
        return files

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self.tls = self._tls_files()
        endpoint = serverFromString(  # type: ignore[no-untyped-call]
            self._reactor, server_endpoint_description(self.config, self.tls)
        )
        site = build_site(
            build_resource(self.engine, clock=self._reactor, base_path=self.config.base_path),
            reactor=self._reactor,
        )
        outcome: list[Any] = []  # IListeningPort or Failure
        endpoint.listen(site).addBoth(outcome.append)
        if self._handle_sighup:
            self._previous_handler = signal.signal(signal.SIGHUP, self._on_sighup)
        # TCP and SSL endpoints listen synchronously; raising here makes twistd exit with
        # the reason instead of running a KMS that does not listen.
        if outcome and isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        if outcome:
            self._listening(outcome[0])

    def _listening(self, port: Any) -> None:
        self.port = port
        address = port.getHost()
        scheme = "https" if self.config.uses_tls else "http"
        host = f"[{address.host}]" if ":" in address.host else address.host
        self.log.info(
            "kms {identity} listening on {scheme}://{host}:{port}{base} ({count} accounts)",
            identity=self.config.identity,
            scheme=scheme,
            host=host,
            port=address.port,
            base=self.config.base_path,
            count=len(self.accounts),
        )

    def stopService(self) -> Any:
        super().stopService()  # type: ignore[no-untyped-call]
        if self._handle_sighup:
            signal.signal(signal.SIGHUP, self._previous_handler or signal.SIG_DFL)
            self._previous_handler = None
        port, self.port = self.port, None
        if port is not None:
            return port.stopListening()
        return None

    def _on_sighup(self, signum: int, frame: FrameType | None) -> None:
        # A signal handler runs between bytecodes of whatever the reactor was doing;
        # do the work from the reactor loop instead.
        self._reactor.callFromThread(self.reload_accounts)

    def reload_accounts(self) -> bool:
        """Re-read the accounts; True when the new set is in use."""
        try:
            store = load_accounts(self.config.path)
        except ConfigError as e:
            self.log.error(
                "kms accounts NOT reloaded, keeping {count} accounts: {error}",
                count=len(self.accounts),
                error=str(e),
                file=e.file,
                line=e.line,
                key=e.key,
            )
            return False
        self.accounts = store
        self.engine.replace_accounts(store)
        self.log.info(
            "kms accounts reloaded from {file}: {count} accounts",
            file=str(self.config.path),
            count=len(store),
        )
        return True


def make_service(
    config: KmsConfig,
    *,
    reactor: Any,
    random_bytes: Callable[[int], bytes] = os.urandom,
    handle_sighup: bool = False,
) -> KmsService:
    """The KMS service for *config*, with the mikey engine behind the HTTP resource."""
    from ._engine import MikeyTicketEngine

    tpk = config.ticket_protection_key
    if tpk is None:
        # RFC 6043 Appendix A: the TPK is the KMS's own secret. Without one configured a
        # fresh one is drawn, so tickets issued before a restart no longer resolve.
        tpk = random_bytes(32)
        KmsService.log.info(
            "kms ticket protection key generated for this run "
            "(set ticket_protection_key to keep tickets valid across restarts)"
        )
    engine = MikeyTicketEngine(
        identity=config.identity,
        accounts=config.accounts,
        ticket_protection_key=tpk,
        random_bytes=random_bytes,
        max_clock_skew=config.max_clock_skew,
        max_ticket_lifetime=config.max_ticket_lifetime,
        replay_cache_size=config.replay_cache_size,
    )
    return KmsService(config, reactor=reactor, engine=engine, handle_sighup=handle_sighup)
