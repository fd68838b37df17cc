"""What the service tells people about their face data and what it keeps: the consent notice, the merchant's
privacy modes, the count of people whose face data is stored, and the impact assessment (docs/compliance.md)."""
