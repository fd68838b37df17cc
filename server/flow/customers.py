"""Who a live check is for beyond its session: the keys its failures count against, and who the customer
is in the waiting line."""

from __future__ import annotations

from dataclasses import dataclass

from ..ratelimit import address_group
from ..sessions import Session

# An address is paused after this many times the failures of one customer: a carrier's NAT (thousands of
# customers behind one address) is not paused for one person's failures, a client that drops its cookie is.
ADDRESS_FAILURE_SHARE = 4


@dataclass(frozen=True)
class Customer:
    """Whom a check's failures count against, by keys of which the client can reset only the last alone:
    the session (the link the merchant made for it; a handoff keeps it), the address (by IPv6 /64), and
    the browser (its device cookie), which tells customers behind one address apart and follows one
    browser across the merchant's links."""

    session: str
    address: str
    browser: str


def customer_key(session: Session, address: str, device: str | None) -> Customer:
    merchant = getattr(session, "merchant_id", None) or session.api_key_id
    return Customer(
        session=f"session:{session.id}",
        address=f"address:{merchant}|{address_group(address)}",
        browser=f"browser:{merchant}|{address}|{device or session.id}",
    )


def line_keys(session: Session, customer: Customer) -> tuple[str, ...]:
    """Who the customer is beyond this session, for the waiting line: their browser (`customer_key`) and
    the merchant's reference. A new session with either takes over the old session's place."""
    merchant = getattr(session, "merchant_id", None) or session.api_key_id
    return (customer.browser,) + ((f"reference:{merchant}|{session.reference_id}",) if session.reference_id else ())
