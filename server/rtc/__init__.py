"""WebRTC: the customer's camera stream, received with aiortc."""
