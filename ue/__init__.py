"""focus-ue: the command-line user agent of the chat-conference focus, and a library.

Command line (:mod:`ue.cli`, console script ``focus-ue``)::

    focus-ue join sip:lobby@conf.example.net --identity sip:alice@example.net \\
        --kms-url https://127.0.0.1:8443/mikey-ticket/v1 --kms-ca kms.ca.pem \\
        --kms-key 000102030405060708090a0b0c0d0e0f --proxy 127.0.0.1:5060

stdin lines are chat messages (``/msg URI text`` private, ``/nick N`` nickname),
stdout gets one JSON object per received message, stderr the progress; the exit code
says how it ended (see :mod:`ue.cli`).

Library (:mod:`ue.client`), for tests and benchmarks that drive many UEs::

    client = ChatClient(UeConfig(identity=..., room=..., proxy=("127.0.0.1", 5060)),
                        kms=KmsClient(...), reactor=reactor,
                        on_message=received.append, on_log=print)
    await client.join()                  # KMS ticket, INVITE, TRANSFER_RESP, TLS-PSK leg
    client.send_chat("hello")            # CPIM From = identity, To = room
    client.send_private("sip:bob@example.net", "psst")
    client.set_nickname("Al")            # NICKNAME; refusals only logged
    await client.leave()                 # BYE, bounded wait
    client.when_ended()                  # None after leave, or RemoteHangup/LegFailure

Errors (:mod:`ue.errors`) form one family rooted at :class:`UeError`, each with the
CLI's exit code. :mod:`ue.chat` holds the pure parts: stdin commands, CPIM bodies and
the JSON output lines.
"""

from ue.chat import Chat, InputError, Nick, Private, Received, build_cpim, parse_input_line
from ue.client import ChatClient, TicketSource, UeConfig
from ue.errors import (
    JoinTimeout,
    KeyingFailure,
    KmsFailure,
    LegFailure,
    RemoteHangup,
    SdpFailure,
    SipFailure,
    UeError,
)

__all__ = [
    "Chat",
    "ChatClient",
    "InputError",
    "JoinTimeout",
    "KeyingFailure",
    "KmsFailure",
    "LegFailure",
    "Nick",
    "Private",
    "Received",
    "RemoteHangup",
    "SdpFailure",
    "SipFailure",
    "TicketSource",
    "UeConfig",
    "UeError",
    "build_cpim",
    "parse_input_line",
]
