"""The verification flow, split by concept:

- `lifecycle`: a session from creation to its final state (consent, reference photo, redaction, expiry)
  and `Lifecycle.move`, the one place a status changes;
- `links`: the single-use hosted-page link and the browser it binds;
- `attempts`: the live checks under way (the registry), how each ends, and the decision.

Views call these and render the outcome; they never change a session themselves.
"""
