"""Ingestion with the real MiniLM model, real Chroma and real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.vectorstore.chroma import ChromaVectorIndex
from bot.wiring import Services
from core.acl import DEFAULT_POLICY, policy_from_mapping
from core.principals import acl_key
from tests.support.pdf import make_pdf

HR_ONLY = policy_from_mapping(
    {"default": ["public"], "rules": [{"match": "hr/**", "allow": ["group:hr"]}]}
)
EVERYONE = frozenset({"public"})
HR = frozenset({"public", "group:hr"})


def write_corpus(root: Path) -> None:
    (root / "hr").mkdir(parents=True)
    (root / "it").mkdir()
    (root / "handbook.md").write_text(
        "---\ntitle: Staff Handbook\n---\n# Staff Handbook\n\n## Holidays\n\n"
        "The office closes on New Year's Day and on the first Monday of September.\n\n"
        "## Parking\n\nEmployees park in the blue garage on level two with a badge.\n"
    )
    (root / "hr" / "salaries.md").write_text(
        "# Salary bands\n\nA level four engineer earns between 140 and 170 thousand dollars.\n"
    )
    (root / "hr" / "ceo-only.md").write_text(
        "---\nacl: ['user:ceo@example.com']\n---\n# Board notes\n\n"
        "The board approved the acquisition of the kayak maker in March.\n"
    )
    (root / "it" / "printers.txt").write_text(
        "PRINTERS\n\nTo clear a paper jam open the rear tray and pull the sheet gently.\n"
    )
    (root / "it" / "wifi.html").write_text(
        "<html><head><title>Guest Wi-Fi</title><script>evil()</script></head><body>"
        "<h1>Guest Wi-Fi</h1><p>The guest network password rotates every Monday morning.</p>"
        "</body></html>"
    )
    (root / "benefits.pdf").write_bytes(
        make_pdf(
            [
                ["Dental cover pays eighty percent of fillings after the deductible."],
                ["Vision cover pays for one pair of glasses every two years."],
            ]
        )
    )


async def sources(services: Services, query: str, principals: frozenset[str]) -> list[str]:
    result = await services.retriever.search(query, principals, 5)
    return [hit.chunk.source for hit in result.hits]


async def test_every_format_is_ingested_with_metadata(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write_corpus(root)
    report = await services.ingestor.ingest([root], HR_ONLY)
    assert report.failed == []
    assert sorted(report.added) == [
        "benefits.pdf",
        "handbook.md",
        "hr/ceo-only.md",
        "hr/salaries.md",
        "it/printers.txt",
        "it/wifi.html",
    ]
    everyone = frozenset({"public", "group:hr", "user:ceo@example.com"})
    result = await services.retriever.search("glasses every two years", everyone, 3)
    top = result.hits[0].chunk
    assert (top.source, top.page) == ("benefits.pdf", 2)
    result = await services.retriever.search("where do I park", everyone, 3)
    top = result.hits[0].chunk
    assert (top.source, top.title, top.heading_path) == (
        "handbook.md",
        "Staff Handbook",
        ("Staff Handbook", "Parking"),
    )
    assert top.page is None
    result = await services.retriever.search("guest wifi password", everyone, 3)
    assert result.hits[0].chunk.title == "Guest Wi-Fi"
    assert "evil" not in result.hits[0].chunk.text


async def test_acl_rules_and_front_matter_override(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write_corpus(root)
    await services.ingestor.ingest([root], HR_ONLY)
    docs = await services.catalog.indexed_documents(str(root.resolve()))
    assert docs["hr/salaries.md"].acl_key == acl_key({"group:hr"})
    assert docs["hr/ceo-only.md"].acl_key == acl_key({"user:ceo@example.com"})
    assert docs["handbook.md"].acl_key == acl_key({"public"})
    assert "hr/salaries.md" not in await sources(services, "level four engineer salary", EVERYONE)
    assert "hr/salaries.md" in await sources(services, "level four engineer salary", HR)
    assert "hr/ceo-only.md" not in await sources(services, "board acquisition kayak", HR)


async def test_reingest_is_idempotent(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write_corpus(root)
    first = await services.ingestor.ingest([root], HR_ONLY)
    vectors = services.index.count()
    second = await services.ingestor.ingest([root], HR_ONLY)
    assert second.added == second.updated == []
    assert len(second.unchanged) == len(first.added)
    assert second.passages_embedded == 0
    assert services.index.count() == vectors


async def test_changed_acl_takes_effect_and_old_vectors_go(
    services: Services, tmp_path: Path
) -> None:
    root = tmp_path / "corpus"
    write_corpus(root)
    await services.ingestor.ingest([root], DEFAULT_POLICY)
    assert "hr/salaries.md" in await sources(services, "level four engineer salary", EVERYONE)
    vectors = services.index.count()
    report = await services.ingestor.ingest([root], HR_ONLY)
    assert report.updated == ["hr/salaries.md"]
    assert "hr/salaries.md" not in await sources(services, "level four engineer salary", EVERYONE)
    assert services.index.count() == vectors  # replaced, not added


async def test_prune_removes_documents_whose_files_are_gone(
    services: Services, tmp_path: Path
) -> None:
    root = tmp_path / "corpus"
    write_corpus(root)
    await services.ingestor.ingest([root], DEFAULT_POLICY)
    before = services.index.count()
    (root / "it" / "printers.txt").unlink()
    kept = await services.ingestor.ingest([root], DEFAULT_POLICY)
    assert kept.pruned == []
    assert "it/printers.txt" in await sources(services, "paper jam rear tray", EVERYONE)
    pruned = await services.ingestor.ingest([root], DEFAULT_POLICY, prune=True)
    assert pruned.pruned == ["it/printers.txt"]
    assert "it/printers.txt" not in await sources(services, "paper jam rear tray", EVERYONE)
    assert services.index.count() < before


async def test_bad_files_are_reported_and_the_rest_continue(
    services: Services, tmp_path: Path
) -> None:
    root = tmp_path / "corpus"
    write_corpus(root)
    (root / "broken.pdf").write_bytes(make_pdf([["Some text here."]])[:120])
    (root / "empty.md").write_text("   \n")
    (root / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (root / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    report = await services.ingestor.ingest([root], DEFAULT_POLICY)
    failed = {f["path"]: f["reason"] for f in report.failed}
    assert set(failed) == {"broken.pdf", "empty.md", "blob.txt"}
    assert "PDF" in failed["broken.pdf"]
    assert "empty" in failed["empty.md"]
    assert "binary" in failed["blob.txt"]
    assert report.skipped == ["photo.jpg"]
    assert len(report.added) == 6


async def test_exact_duplicates_are_stored_once(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    para = "Badges are printed by the front desk on the ground floor within one working day."
    (root / "a.md").write_text(f"# A\n\n{para}\n")
    (root / "b.md").write_text(f"# A\n\n{para}\n")
    report = await services.ingestor.ingest([root], DEFAULT_POLICY)
    assert report.chunks == 2
    assert report.exact_duplicates == 1
    assert services.index.count() == 1
    hits = (await services.retriever.search("badge printing", EVERYONE, 5)).hits
    assert len(hits) == 1


async def test_near_duplicates_are_counted(services: Services, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "a.md").write_text(
        "# Badges\n\nBadges are printed by the front desk on the ground floor within one day.\n"
    )
    await services.ingestor.ingest([root], DEFAULT_POLICY)
    (root / "b.md").write_text(
        "# Badges\n\nBadges are printed by the front desk on the ground floor within one day!\n"
    )
    report = await services.ingestor.ingest([root], DEFAULT_POLICY)
    assert report.added == ["b.md"]
    assert report.near_duplicates == 1
    assert services.index.count() == 2


class _ObservedIndex(ChromaVectorIndex):
    """The real index, with a probe run at the two moments a replacement could show."""

    probe = None

    def upsert(self, ids, vectors, acl_keys):  # type: ignore[no-untyped-def]
        super().upsert(ids, vectors, acl_keys)
        if self.probe:
            self.probe("after new vectors, before the catalog switch")

    def delete(self, ids):  # type: ignore[no-untyped-def]
        if self.probe and ids:
            self.probe("after the catalog switch, before old vectors go")
        super().delete(ids)


async def test_replacement_is_atomic_for_readers(services: Services, tmp_path: Path) -> None:
    import asyncio

    root = tmp_path / "corpus"
    root.mkdir()
    doc = root / "policy.md"
    old = [f"Old rule {n}: lockers are emptied on Friday number {n}." for n in range(6)]
    new = [f"New rule {n}: lockers are emptied on Tuesday number {n}." for n in range(6)]
    doc.write_text("# Lockers\n\n" + "\n\n".join(old) + "\n")
    await services.ingestor.ingest([root], DEFAULT_POLICY)

    observed = _ObservedIndex.__new__(_ObservedIndex)
    observed.__dict__.update(services.index.__dict__)
    services.ingestor._index = observed  # the same Chroma collection, observed
    seen: list[tuple[str, set[str]]] = []
    loop = asyncio.get_running_loop()

    def probe(moment: str) -> None:
        future = asyncio.run_coroutine_threadsafe(
            services.retriever.search("when are lockers emptied", EVERYONE, 10), loop
        )
        texts = " ".join(hit.chunk.text for hit in future.result(timeout=60).hits)
        seen.append((moment, {word for word in ("Old", "New") if f"{word} rule" in texts}))

    observed.probe = probe
    doc.write_text("# Lockers\n\n" + "\n\n".join(new) + "\n")
    report = await services.ingestor.ingest([root], DEFAULT_POLICY)
    assert report.updated == ["policy.md"]
    assert seen == [
        ("after new vectors, before the catalog switch", {"Old"}),
        ("after the catalog switch, before old vectors go", {"New"}),
    ]


@pytest.mark.parametrize("suffix", [".md", ".txt", ".html", ".pdf"])
async def test_single_named_file(services: Services, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"note{suffix}"
    body = "Kayak rentals are free for staff on the last weekend of every month."
    if suffix == ".pdf":
        path.write_bytes(make_pdf([[body]]))
    elif suffix == ".html":
        path.write_text(f"<html><body><p>{body}</p></body></html>")
    else:
        path.write_text(body + "\n")
    report = await services.ingestor.ingest([path], DEFAULT_POLICY)
    assert report.added == [path.name]
    hits = (await services.retriever.search("free kayak rentals", EVERYONE, 1)).hits
    assert hits[0].chunk.source == path.name


async def test_another_embedder_on_a_filled_index_asks_for_reindex(
    services: Services, tmp_path: Path
) -> None:
    from bot.settings import Settings
    from bot.wiring import build_services
    from core.ports import IndexMismatchError

    root = tmp_path / "corpus"
    write_corpus(root)
    await services.ingestor.ingest([root], DEFAULT_POLICY)
    other = Settings(
        data_dir=services.settings.data_dir,
        embeddings={"model": "openai/text-embedding-3-small", "dimension": 1536},
    )
    with pytest.raises(IndexMismatchError, match="re-index"):
        await build_services(other)
    rebuilt = await build_services(services.settings, reindex=True)
    try:
        assert rebuilt.index.count() == 0
        assert await rebuilt.catalog.indexed_documents(str(root.resolve())) == {}
    finally:
        await rebuilt.close()


@pytest.mark.postgres
async def test_ingest_and_retrieval_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    from bot.settings import Settings
    from bot.wiring import build_services

    services = await build_services(Settings(data_dir=tmp_path / "var", database_url=postgres_url))
    try:
        root = tmp_path / "corpus"
        write_corpus(root)
        report = await services.ingestor.ingest([root], HR_ONLY)
        assert len(report.added) == 6 and not report.failed
        # The keyword ranking runs in PostgreSQL's full-text search here.
        lexical = await services.catalog.lexical_search("paper jam tray", {acl_key(EVERYONE)}, 5)
        assert lexical
        assert "hr/salaries.md" not in await sources(services, "engineer salary", EVERYONE)
        assert "hr/salaries.md" in await sources(services, "engineer salary", HR)
        again = await services.ingestor.ingest([root], HR_ONLY)
        assert len(again.unchanged) == 6
        (root / "it" / "printers.txt").unlink()
        pruned = await services.ingestor.ingest([root], HR_ONLY, prune=True)
        assert pruned.pruned == ["it/printers.txt"]
        assert "it/printers.txt" not in await sources(services, "paper jam", EVERYONE)
    finally:
        await services.close()


async def test_litellm_embeddings_through_an_openai_compatible_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.settings import Settings
    from bot.wiring import build_services
    from core.ports import IndexMismatchError
    from tests.support.model_server import EMBEDDING_DIMENSION, ModelServer

    monkeypatch.setenv("EMBED_KEY", "k")
    with ModelServer() as server:
        settings = Settings(
            data_dir=tmp_path / "var",
            embeddings={
                "model": "openai/embed-small",
                "api_base": server.url,
                "api_key_env": "EMBED_KEY",
                "dimension": EMBEDDING_DIMENSION,
                "batch_size": 4,
            },
        )
        services = await build_services(settings)
        try:
            root = tmp_path / "corpus"
            write_corpus(root)
            report = await services.ingestor.ingest([root], HR_ONLY)
            assert len(report.added) == 6 and not report.failed
            assert "it/printers.txt" in await sources(services, "paper jam rear tray", EVERYONE)
            batches = [r for r in server.requests if r["_model"] == "embed-small"]
            assert batches and all(len(r["input"]) <= 4 for r in batches)
        finally:
            await services.close()
        # The index remembers its embedder: the local model may not silently reuse it.
        with pytest.raises(IndexMismatchError, match="re-index"):
            await build_services(Settings(data_dir=tmp_path / "var"))
