"""`python -m realname_tools.chaos FAULT` (from the repository root): one fault, its tally as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from . import faults

FAULTS = {
    "kill": faults.kill,
    "kill-page": faults.kill_page,
    "webhooks": faults.webhooks,
    "db-restart": lambda postgres, folder: faults.database(postgres, folder, "restart"),
    "db-pause": lambda postgres, folder: faults.database(postgres, folder, "pause"),
    "disk-full": lambda postgres, folder: faults.disk_full(folder),
    "clock": faults.clock,
}
WITHOUT_POSTGRES = {"disk-full"}  # the SQLite default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realname_tools.chaos", description="inject one fault into a real cluster")
    parser.add_argument("fault", choices=sorted(FAULTS))
    args = parser.parse_args(argv)
    from tests.support.postgres import start_cluster

    postgres = start_cluster() if args.fault not in WITHOUT_POSTGRES else None
    try:
        with tempfile.TemporaryDirectory(prefix="realname-chaos-") as folder:
            tally = asyncio.run(FAULTS[args.fault](postgres, Path(folder)))
    finally:
        if postgres is not None:
            postgres.stop()
    print(json.dumps(tally.to_dict(), indent=1))
    return 0 if tally.sessions_lost == 0 and tally.decided_twice == 0 and tally.webhooks_delivered == tally.webhooks_expected else 1


if __name__ == "__main__":
    sys.exit(main())
