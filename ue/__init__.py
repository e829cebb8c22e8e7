"""focus-ue: the command-line user agent (dial-in, answer dial-out, chat)."""
