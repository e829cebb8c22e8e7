"""MIKEY (RFC 3830) and MIKEY-TICKET (RFC 6043): codec, key derivation, exchanges.

Pure: depends on attrs and cryptography only. Time and random bytes are parameters.
"""
