"""Retrieval benchmark: ingest throughput and permission-filtered query latency.

For 10k and 100k chunks (random unit vectors, 384 dimensions; ACLs drawn over 50 groups and
500 distinct ACL sets) it prints ingest throughput into the real catalog (SQLite) and the
real embedded Chroma index, and p50/p95 dense top-5 latency through `Retriever.dense`:
without the permission filter (a requester who may read everything) and with it (a user in
3 groups). For reference it also times Chroma's own `where` filter. Last, real-model ingest
throughput on the Zava corpus (parse, chunk, MiniLM embed, write).

    .venv/bin/python benchmarks/retrieval.py [--sizes 10000 100000] [--queries 300] [--no-zava]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _support import parse_args, pct

from adapters.db.catalog import SqlCatalog
from adapters.db.engine import create_engine, upgrade
from adapters.vectorstore.chroma import ChromaVectorIndex, open_client
from core.documents import ChunkRecord, DocumentRecord, chunk_id, passage_id, sha256
from core.principals import PUBLIC, acl_key, may_read
from core.retrieval import RetrievalConfig, Retriever

DIM = 384
GROUPS = [f"group:g{n:02d}" for n in range(50)]
CHUNKS_PER_DOC = 100
WORDS = "leave badge laptop travel hotel payroll dental vision vpn printer close audit".split()


def acl_sets(rng: random.Random) -> list[frozenset[str]]:
    sets: set[frozenset[str]] = set()
    while len(sets) < 500:
        chosen = set(rng.sample(GROUPS, rng.randint(1, 3)))
        if rng.random() < 0.1:
            chosen.add(PUBLIC)
        sets.add(frozenset(chosen))
    return sorted(sets, key=sorted)


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class GivenVectors:
    """The queries here are vectors already: an embedder is required by the retriever's
    shape but never asked for a text's vector."""

    name = "given-vectors"
    dimension = DIM

    def embed(self, texts: object) -> list[list[float]]:
        raise RuntimeError("the retrieval benchmark queries with vectors, not texts")


async def build(
    size: int, tmp: Path, seed: int
) -> tuple[Retriever, SqlCatalog, ChromaVectorIndex, list[frozenset[str]], float]:
    rng, nprng = random.Random(seed), np.random.default_rng(seed)
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await upgrade(url)
    catalog = SqlCatalog(create_engine(url))
    index = ChromaVectorIndex(open_client(path=tmp / "chroma"), "bench_chunks")
    sets = acl_sets(rng)
    started = time.perf_counter()
    for doc in range(size // CHUNKS_PER_DOC):
        acl = sets[rng.randrange(len(sets))]
        key = acl_key(acl)
        vectors = unit_vectors(nprng, CHUNKS_PER_DOC)
        chunks = []
        for position in range(CHUNKS_PER_DOC):
            body = f"doc {doc} chunk {position} " + " ".join(rng.choices(WORDS, k=12))
            digest = sha256(body)
            chunks.append(
                ChunkRecord(
                    id=chunk_id(f"doc{doc}", position, digest),
                    position=position,
                    page=None,
                    heading_path=(),
                    content_hash=digest,
                    passage_id=passage_id(key, digest),
                    text=body,
                    index_text=body,
                )
            )
        index.upsert([c.passage_id for c in chunks], vectors.tolist(), [key] * len(chunks))
        await catalog.replace_document(
            DocumentRecord(
                id=f"doc{doc}",
                source=f"doc{doc}.md",
                root="/bench",
                title=f"Document {doc}",
                format="md",
                content_hash=sha256(str(doc)),
                acl=acl,
                updated_at=datetime.now(UTC),
            ),
            chunks,
        )
    elapsed = time.perf_counter() - started
    retriever = Retriever(index, catalog, GivenVectors(), RetrievalConfig())
    return retriever, catalog, index, sets, size / elapsed


async def time_queries(fn, queries: np.ndarray) -> list[float]:  # type: ignore[no-untyped-def]
    for vector in queries[:30]:
        await fn(vector)
    timings = []
    for vector in queries[30:]:
        started = time.perf_counter()
        await fn(vector)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def bench_size(size: int, n_queries: int, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        retriever, catalog, index, sets, rate = await build(size, Path(tmp), seed)
        all_keys = frozenset(acl_key(s) for s in sets)
        user = frozenset({PUBLIC, *random.Random(seed + 1).sample(GROUPS, 3)})
        user_keys = frozenset(acl_key(s) for s in sets if may_read(user, s))
        counts = await catalog.passage_counts()
        share = sum(counts.get(k, 0) for k in user_keys) / sum(counts.values())
        queries = unit_vectors(np.random.default_rng(seed + 2), n_queries + 30)
        strategies: Counter[str] = Counter()

        async def unfiltered(vector: np.ndarray) -> None:
            await retriever.dense(vector.tolist(), all_keys, 5)

        async def filtered(vector: np.ndarray) -> None:
            result = await retriever.dense(vector.tolist(), user_keys, 5)
            strategies[result.strategy.split(" ")[0]] += 1
            assert len(result.matches) == 5
            assert all(m.acl_key in user_keys for m in result.matches)

        async def chroma_where(vector: np.ndarray) -> None:
            await asyncio.to_thread(index.query, vector.tolist(), 5, user_keys)

        plain = await time_queries(unfiltered, queries)
        permitted = await time_queries(filtered, queries)
        where = await time_queries(chroma_where, queries[: min(len(queries), 130)])
        await catalog._engine.dispose()
    print(f"\n== {size:,} chunks, 500 ACL sets over 50 groups ==")
    print(f"ingest throughput (catalog + Chroma, vectors given): {rate:,.0f} chunks/s")
    print(f"user in 3 groups may read {share:.1%} of chunks")
    print(f"top-5 without permission filter : {_latency(plain)}")
    ratio = pct(permitted, 95) / pct(plain, 95)
    print(f"top-5 with permission filter    : {_latency(permitted)}  (p95 ratio {ratio:.2f}x)")
    print(f"  strategies used: {dict(strategies)}")
    print(f"reference, Chroma where-$in only: {_latency(where)}")


def _latency(timings: list[float]) -> str:
    return f"p50 {pct(timings, 50):6.2f} ms  p95 {pct(timings, 95):6.2f} ms"


async def bench_zava() -> None:
    from bot.settings import Settings
    from bot.wiring import build_services
    from core.acl import DEFAULT_POLICY

    corpus = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "zava"
    if not corpus.is_dir():
        print(f"\nZava corpus not found at {corpus}: real-model ingest skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        services = await build_services(Settings(data_dir=Path(tmp)))
        services.embedder.embed(["warm up"])
        report = await services.ingestor.ingest([corpus], DEFAULT_POLICY)
        await services.close()
    print(f"\n== real model: Zava corpus ({len(report.added)} documents) ==")
    print(
        f"ingest with MiniLM on CPU: {report.chunks} chunks in {report.seconds:.1f} s = "
        f"{report.chunks / report.seconds:.1f} chunks/s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-zava", action="store_true")
    args = parse_args(parser, {"sizes": [1_000], "queries": 40, "no_zava": True})
    for size in args.sizes:
        await bench_size(size, args.queries, args.seed)
    if not args.no_zava:
        await bench_zava()


if __name__ == "__main__":
    asyncio.run(main())
