"""`python -m server bench-gallery`: the face gallery's engines at size: insert rate, search latency
(p50, p99), recall@1 of the engine's answer against exact search, memory and disk.

Synthetic templates: unit vectors with the anisotropy of real face templates (a shared mean direction
and most of the variance in a 128-dimensional subspace, plus isotropic noise), since vectors uniform on
the sphere are the hardest case for HNSW and unlike faces. Each query is another "capture" of a random
entry (its template plus noise; cosine about 0.7), as a returning customer's face would be.

The deployment's own code paths: the schema's migrations, `GalleryStore.add` for the inserts (as an
enrolment), `nearest` for the searches (as a decision). To reach a size, all but the last --online
templates are loaded with COPY and the HNSW index is built once after them, as `gallery rekey` builds
it (`GalleryStore.rebuild_index`: maintenance_work_mem raised to what the graph needs).

SQLite: a throwaway file in a temporary folder. PostgreSQL: the database of --database-url (or
DATABASE_URL): a scratch database only (it is opened with a fixed evidence key, so a real database is
refused); the benchmark's merchant and its entries are deleted afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIMENSIONS = 512


def synthetic_templates(count: int, rng: np.random.Generator, chunk: int = 50_000) -> np.ndarray:
    basis = rng.standard_normal((128, DIMENSIONS)).astype(np.float32) / np.sqrt(DIMENSIONS)
    mean = rng.standard_normal(DIMENSIONS).astype(np.float32)
    mean *= 0.1 / np.linalg.norm(mean)
    out = np.empty((count, DIMENSIONS), dtype=np.float32)
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        rows = mean + rng.standard_normal((size, 128)).astype(np.float32) @ basis * 2.0
        rows += rng.standard_normal((size, DIMENSIONS)).astype(np.float32) * (0.5 / np.sqrt(DIMENSIONS))
        out[start : start + size] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def recaptured(templates: np.ndarray, rng: np.random.Generator, noise: float = 1.0) -> np.ndarray:
    noisy = templates + noise * rng.standard_normal(templates.shape).astype(np.float32) / np.sqrt(DIMENSIONS)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def rss_bytes() -> int:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run(args: argparse.Namespace) -> int:
    from server.config import load_settings
    from server.console import fail, print_json
    from server.storage.crypto import Cipher
    from server.storage.gallery import GalleryStore
    from server.storage.store import Store

    if args.size < 1 or args.queries < 1:
        return fail("bad_size", "--size and --queries must be positive", args.json)
    settings = load_settings(args.config)
    folder = None
    if args.engine == "postgresql":
        location: str | Path = args.database_url or settings.database_url
        if not location:
            return fail("configuration", "bench-gallery --engine postgresql needs --database-url (a scratch database) or DATABASE_URL", args.json)
    else:
        folder = Path(tempfile.mkdtemp(prefix="realname-bench-gallery-"))
        location = folder / "bench.sqlite3"
    rng = np.random.default_rng(args.seed)
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr))
    log(f"making {args.size} synthetic templates")
    data = synthetic_templates(args.size, rng)
    picks = rng.integers(0, args.size, args.queries)
    queries = recaptured(data[picks], rng)
    # A fixed key: a scratch database opens with it again, while a real one (another key) is refused.
    store = Store(location, Cipher(hashlib.sha256(b"realname bench-gallery scratch database").digest()))
    merchant = store.create_merchant(f"bench-gallery-{secrets.token_hex(4)}")
    records = GalleryStore(store)
    try:
        rss_before = rss_bytes()
        # All but the last `online` templates in bulk (PostgreSQL: COPY, then the HNSW index built once), the
        # rest one transaction per 1,000 into the full gallery: the insert rate a growing gallery sees.
        online = min(args.size, args.online)
        log(f"loading {args.size - online} into {records.engine} in bulk")
        started = time.perf_counter()
        build_s = records.bulk_load(merchant.id, False, data[: args.size - online]) if args.size > online else 0.0
        bulk_s = time.perf_counter() - started
        first = records.store._all("SELECT id FROM gallery WHERE merchant_id = ? ORDER BY id", (merchant.id,))
        log(f"inserting {online} one by one")
        started = time.perf_counter()
        ids = [row["id"] for row in first] + records.add_many(merchant.id, False, data[args.size - online :])
        insert_s = time.perf_counter() - started
        rss_after = rss_bytes()
        log("searching")
        exact_best = np.argmax(data @ queries.T, axis=0)  # one matrix product for every query's exact answer
        measured = []
        for ef_search in (args.ef_search or [records.ef_search]) if records.index is None else [0]:
            records.ef_search = ef_search or records.ef_search
            latencies, agree, found_pick = [], 0, 0
            for number, query in enumerate(queries):
                started = time.perf_counter()
                hits = records.nearest(merchant.id, False, query, k=10)
                latencies.append((time.perf_counter() - started) * 1000)
                agree += bool(hits) and hits[0].entry.id == ids[int(exact_best[number])]
                found_pick += bool(hits) and hits[0].entry.id == ids[picks[number]]
            measured.append({
                "ef_search": ef_search or None,
                "search_ms": {"p50": round(float(np.percentile(latencies, 50)), 2), "p99": round(float(np.percentile(latencies, 99)), 2), "max": round(max(latencies), 2)},
                "recall_at_1": round(agree / args.queries, 4),  # the engine's top-1 is the exact top-1
                "query_source_at_1": round(found_pick / args.queries, 4),  # the entry the query was made from came first
            })
        report = {
            "engine": records.engine,
            "size": args.size,
            "queries": args.queries,
            "insert_per_s": round(online / insert_s, 1),  # one by one, into the full gallery
            "bulk_load_s": round(bulk_s, 1),
            "index_build_s": round(build_s, 1) if records.index is None else None,
            **measured[0],
            "process_rss_growth_mb": round((rss_after - rss_before) / 2**20, 1),
        }
        if len(measured) > 1:
            report["by_ef_search"] = measured
        if records.index is not None:
            report["index_memory_mb"] = round(records.index.memory_bytes() / 2**20, 1)
            files = [Path(str(location) + suffix) for suffix in ("", "-wal")]
            report["disk_mb"] = round(sum(f.stat().st_size for f in files if f.exists()) / 2**20, 1)
        else:
            row = store._one("SELECT pg_total_relation_size('gallery') AS total, pg_relation_size('gallery_embedding') AS hnsw")
            report["disk_mb"] = round(row["total"] / 2**20, 1)
            report["hnsw_index_mb"] = round(row["hnsw"] / 2**20, 1)
    finally:
        # Deleting 10^5 rows from under the HNSW index may outlast a serving statement's deadline.
        with getattr(store._db, "without_deadline", contextlib.nullcontext)():
            store._write("DELETE FROM gallery WHERE merchant_id = ?", (merchant.id,))
            store._write("DELETE FROM merchants WHERE id = ?", (merchant.id,))
        store.close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        print_json(report)
    else:
        for name, value in report.items():
            print(f"{name}: {value}")
    return 0


def add_parser(sub) -> None:
    parser = sub.add_parser("bench-gallery", help="the face gallery's engines at size: insert rate, search p50/p99, recall@1 against exact, memory, disk")
    parser.add_argument("--size", type=int, required=True, help="synthetic templates in the gallery")
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--database-url", dest="database_url", help="PostgreSQL: a scratch database (default: DATABASE_URL)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--online", type=int, default=2000, help="of them, inserted one by one at the end (the rest in bulk)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ef-search", dest="ef_search", type=lambda text: [int(v) for v in text.split(",")], help="PostgreSQL: HNSW candidates per search, one or more (e.g. 100,200,400; default: the service's)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)
