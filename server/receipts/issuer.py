"""Signing the receipt of a session that reached a final state."""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..models.inventory import ModelIdentity
from ..sessions import Session
from ..storage.store import Store
from . import jws
from .claims import ReceiptContext, receipt_claims
from .keys import ReceiptKeys


class ReceiptIssuer:
    def __init__(self, keys: ReceiptKeys, store: Store, models: Sequence[ModelIdentity], issuer: str, approve_without_anti_spoofing: bool) -> None:
        self.keys = keys
        self.store = store
        self.models = [m.to_dict() for m in models]
        self.issuer = issuer
        self.approve_without_anti_spoofing = approve_without_anti_spoofing

    def issue(self, session: Session) -> str:
        merchant_id, hashes = self.store.receipt_facts(session.id)
        context = ReceiptContext(self.issuer, merchant_id, hashes, self.models, self.approve_without_anti_spoofing)
        key = self.keys.current()
        return jws.sign(receipt_claims(session, context, time.time()), key.private_key, key.kid)
