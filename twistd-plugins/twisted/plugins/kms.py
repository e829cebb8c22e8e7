"""`twistd kms`: the reference MIKEY-TICKET KMS. A lazy drop-in: kms.tap is imported on use."""

from twisted.application.service import ServiceMaker

kms = ServiceMaker(
    "msrp-focus KMS",
    "kms.tap",
    "Reference MIKEY-TICKET KMS (RFC 6043) over HTTPS: twistd -n kms --config kms.toml",
    "kms",
)
