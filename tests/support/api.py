"""Small helpers for calling the merchant API in tests."""


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
