"""What the command-line tools print: a result as one line of JSON, or an error as its code and message.

Shared by `server.cli` and the offline tools in `realname_tools`, which must not import `server.cli`
(it dispatches to them).
"""

from __future__ import annotations

import json
import sys
from typing import Any

EXIT_ERROR = 2


def print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=None))


def fail(code: str, message: str, as_json: bool) -> int:
    if as_json:
        print_json({"error": {"code": code, "message": message}})
    else:
        print(f"error ({code}): {message}", file=sys.stderr)
    return EXIT_ERROR
