"""The one error family of the KMS client; each error says what the caller may do next."""

from __future__ import annotations

__all__ = ["KmsClientError", "KmsProtocolError", "KmsRejected", "KmsUnavailable"]


class KmsClientError(Exception):
    """Root of every error a KMS client Deferred fails with."""


class KmsUnavailable(KmsClientError):
    """The KMS could not be reached or kept failing (connection error, timeout, 5xx).

    Raised only after the bounded retries are used up. `http_status` is the last 5xx seen,
    None when no HTTP response came back at all. A SIP caller answers 503/480.
    """

    def __init__(self, reason: str, *, attempts: int, http_status: int | None = None) -> None:
        self.reason = reason
        self.attempts = attempts
        self.http_status = http_status
        super().__init__(f"KMS unavailable after {attempts} attempt(s): {reason}")


class KmsRejected(KmsClientError):
    """The KMS refused the exchange with a 4xx (PROFILE.md section 3); never retried.

    `err_code` is the MIKEY ERR number of the Error body (RFC 3830 section 6.12,
    RFC 6043 section 6.9) when there was one: 0 auth failure, 1 invalid timestamp or
    replay, 7 invalid ID / not authorised, 14 invalid or expired ticket.
    """

    def __init__(self, *, http_status: int, err_code: int | None) -> None:
        self.http_status = http_status
        self.err_code = err_code
        err = "no MIKEY Error body" if err_code is None else f"MIKEY ERR {err_code}"
        super().__init__(f"KMS rejected the request: HTTP {http_status}, {err}")


class KmsProtocolError(KmsClientError):
    """The KMS answered something this client cannot accept.

    A 2xx that is not application/mikey, a response over the size limit, a body that does
    not decode or whose MAC does not verify, or an unexpected status. Not retried: it is a
    fault (or an attack) to report, not a load condition.
    """
