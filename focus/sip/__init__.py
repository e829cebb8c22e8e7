"""Sans-IO SIP (RFC 3261): grammar, messages, framing, transactions, dialogs."""
