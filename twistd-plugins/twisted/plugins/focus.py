"""`twistd focus`: the MSRP conference focus. A lazy drop-in: focus.tap is imported on use."""

from twisted.application.service import ServiceMaker

focus = ServiceMaker(
    "msrp-focus conference focus",
    "focus.tap",
    "MSRP conference focus with MIKEY-TICKET keyed TLS-PSK legs: "
    "twistd -n focus --config focus.toml",
    "focus",
)
