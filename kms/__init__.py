"""Reference KMS for MIKEY-TICKET (RFC 6043 Appendix A base tickets) over HTTPS.

`twistd -n kms --config kms.toml` runs it (kms.tap); PROFILE.md sections 3, 4 and 6
define what it answers. The configuration format is documented on `load_config`.
"""

from ._accounts import Account, AccountStore, AmbiguousIdentity
from ._config import DEFAULT_BASE_PATH, KmsConfig, load_accounts, load_config
from ._errors import ConfigError, KmsError, Rejection
from ._identity import IdentityPattern, InvalidIdentity
from ._resource import (
    MAX_BODY_SIZE,
    MIKEY_CONTENT_TYPE,
    Reply,
    TicketEngine,
    build_resource,
    build_site,
)
from ._service import KmsService, make_service

__all__ = [
    "DEFAULT_BASE_PATH",
    "MAX_BODY_SIZE",
    "MIKEY_CONTENT_TYPE",
    "Account",
    "AccountStore",
    "AmbiguousIdentity",
    "ConfigError",
    "IdentityPattern",
    "InvalidIdentity",
    "KmsConfig",
    "KmsError",
    "KmsService",
    "Rejection",
    "Reply",
    "TicketEngine",
    "build_resource",
    "build_site",
    "load_accounts",
    "load_config",
    "make_service",
]
