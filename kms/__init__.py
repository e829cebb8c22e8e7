"""Reference KMS for MIKEY-TICKET (RFC 6043 Appendix A base tickets) over HTTPS."""
