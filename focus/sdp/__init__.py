"""SDP (RFC 8866) with the MSRP media attributes and offer/answer helpers."""
