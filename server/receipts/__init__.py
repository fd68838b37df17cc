"""Signed verification receipts: a compact JWS (EdDSA, Ed25519) for every final decision, verifiable
offline against the public keys at /.well-known/jwks.json (docs/receipts.md)."""
