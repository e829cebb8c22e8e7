"""KMS client (PROFILE.md section 3) built on treq.

agent = https_agent(reactor, ca_file="kms.ca.pem")
client = KmsClient(base_url="https://127.0.0.1:8443/mikey-ticket/v1",
                   kms_identity="sip:kms@example.net", psk=key, http=agent,
                   reactor=reactor)
grant = await client.request_ticket(initiator=me, responders=[peer], validity=3600)
resolution = await client.resolve_ticket(responder=me, ticket=ticket)
"""

from ._client import KmsClient, TicketResolution
from ._errors import KmsClientError, KmsProtocolError, KmsRejected, KmsUnavailable
from ._http import MAX_RESPONSE_SIZE, RetryPolicy, https_agent, persistent_pool

__all__ = [
    "MAX_RESPONSE_SIZE",
    "KmsClient",
    "KmsClientError",
    "KmsProtocolError",
    "KmsRejected",
    "KmsUnavailable",
    "RetryPolicy",
    "TicketResolution",
    "https_agent",
    "persistent_pool",
]
