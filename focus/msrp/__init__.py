"""Sans-IO MSRP (RFC 4975), CPIM (RFC 3862) and chat-room rules (RFC 7701)."""
