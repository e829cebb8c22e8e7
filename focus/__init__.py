"""The MSRP conference focus. Subpackages sip, sdp and msrp are pure protocol cores."""
