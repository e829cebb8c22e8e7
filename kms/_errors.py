"""The one error family of the KMS package; each error knows its wire answer."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ConfigError", "KmsError", "Rejection"]


class KmsError(Exception):
    """Root of every error the kms package raises."""


class ConfigError(KmsError):
    """A configuration file cannot be used; names the file, line (when known) and key."""

    def __init__(
        self, message: str, *, file: Path | str, line: int | None = None, key: str | None = None
    ) -> None:
        self.message = message
        self.file = str(file)
        self.line = line
        self.key = key
        where = self.file if line is None else f"{self.file}:{line}"
        what = f"{key}: " if key else ""
        super().__init__(f"{where}: {what}{message}")


class Rejection(KmsError):
    """A ticket request or resolve the KMS refuses (PROFILE.md section 3).

    Carries what the HTTP layer answers with: the HTTP status and the MIKEY ERR code
    (RFC 3830 section 6.12, RFC 6043 section 6.9) for the Error message body. `reason`
    goes to the log; it never holds key material.
    """

    def __init__(
        self,
        reason: str,
        *,
        http_status: int,
        err_code: int,
        identity: str | None = None,
    ) -> None:
        self.reason = reason
        self.http_status = http_status
        self.err_code = err_code
        self.identity = identity
        super().__init__(f"{http_status} (MIKEY ERR {err_code}): {reason}")
