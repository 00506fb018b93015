"""Topic rules as operators write them and users meet them: the measured threshold over the
labelled set (real MiniLM), the issue's layoffs rule through a YAML file and the real CLI,
the human request on the same mechanism, and `config check` listing it all."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from adapters.embeddings.local import LocalMiniLMEmbedder
from bot.settings import Settings
from core.answering.policy import DEFAULT_EXAMPLE_THRESHOLD, PolicyGate
from tests.support.cli import REPO, run
from tests.support.governance import MemoEncoder, load_policy, load_rows, measure, with_threshold

JORDAN = "jordan.kim@harborlight.example"
MAX_FALSE_BLOCKS = 0.02
SWEEP = (0.40, 0.45, 0.48, 0.50, 0.52, 0.55, 0.58, 0.60, 0.65, 0.70)


async def test_the_shipped_threshold_is_the_measured_one() -> None:
    """The real matcher over tests/data/governance.jsonl: the shipped threshold is the one
    with the highest recall that blocks ≤ 2% of the questions that must pass, and on the
    split the rules were tuned on it meets the goal (recall ≥ 0.95). The held-out split
    (written after tuning) is measured too: README "Governance" gives its lower recall."""
    assert Settings().policy.example_threshold == DEFAULT_EXAMPLE_THRESHOLD
    config, rows = load_policy(), load_rows()
    encoder = MemoEncoder(LocalMiniLMEmbedder())
    sweep = {}
    for threshold in SWEEP:
        sweep[threshold] = await measure(
            PolicyGate(with_threshold(config, threshold), encoder), rows, encoder
        )
    eligible = [t for t, m in sweep.items() if m.false_block_rate <= MAX_FALSE_BLOCKS]
    best = max(eligible, key=lambda t: (sweep[t].recall, t))
    assert best == DEFAULT_EXAMPLE_THRESHOLD, {t: m.recall for t, m in sweep.items()}
    shipped = sweep[DEFAULT_EXAMPLE_THRESHOLD]
    assert shipped.false_block_rate <= MAX_FALSE_BLOCKS, shipped.false_blocks
    tune = await measure(
        PolicyGate(config, encoder), [r for r in rows if r["split"] == "tune"], encoder
    )
    assert tune.recall >= 0.95, tune.misses
    assert tune.false_block_rate <= MAX_FALSE_BLOCKS, tune.false_blocks
    # Word forms alone already catch every labelled word form; examples add the paraphrases.
    forms = await measure(PolicyGate(config), rows, None)
    assert forms.by_kind["word_form"][0] == forms.by_kind["word_form"][1]
    assert shipped.by_kind["paraphrase"][0] > forms.by_kind["paraphrase"][0]


def governance_blocks() -> list[dict]:
    """The YAML examples of README "## Governance", as a reader would copy them."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Governance") : readme.index("## Configuration")]
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, re.S)]


TOPIC_EXAMPLE, BOUNDARY_EXAMPLE = governance_blocks()
[LAYOFFS] = TOPIC_EXAMPLE["policy"]["prohibited_topics"]
CONFIG = {
    "cache": {"enabled": False},
    "policy": {
        **TOPIC_EXAMPLE["policy"],
        "human_request": {"examples": ["Can the concierge desk take this over?"]},
    },
}


def test_the_layoffs_rule_through_the_cli(demo_settings: Settings, tmp_path: Path) -> None:
    """The README's layoffs rule (the issue's patterns plus examples), written to a file
    and used by `answerdesk ask` in a subprocess."""
    config = tmp_path / "answerdesk.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    env = {"ANSWERDESK_CONFIG": str(config), "ANSWERDESK_DATA_DIR": str(demo_settings.data_dir)}
    done = run(
        tmp_path, "ask", "are there going to be layoffs next quarter?", "--as", JORDAN, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(LAYOFFS["message"]) and "— refused" in done.stdout

    questions = [
        "will they cut jobs in Q3?",
        "Is downsizing planned?",
        "what is the layoff notice period in the handbook?",  # documented near-miss
        "How many PTO days do I get after 3 years?",
        "How do I lay out the expense report for a trip?",
        "Could the concierge desk take over my question?",  # the configured human example
    ]
    lines = "".join(json.dumps({"question": q, "as": JORDAN}) + "\n" for q in questions)
    (tmp_path / "q.jsonl").write_text(lines)
    done = run(tmp_path, "ask", "--file", str(tmp_path / "q.jsonl"), env=env)
    assert done.returncode == 0, done.stderr
    cut, downsizing, notice, pto, layout, concierge = map(json.loads, done.stdout.splitlines())
    for refused in (cut, downsizing):
        assert (refused["mode"], refused["text"]) == ("refused", LAYOFFS["message"])
    for passed in (notice, pto, layout):
        assert passed["mode"] not in ("refused", "handoff"), passed
    assert pto["mode"] == "answer" and pto["citations"]
    assert concierge["mode"] == "handoff" and concierge["ticket"]

    def policy(answer: dict) -> dict:
        shown = run(tmp_path, "trace", "show", answer["request_id"], "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        return json.loads(shown.stdout)["stages"]["policy"]

    match = policy(cut)["topic_match"]
    assert (match["rule"], match["how"], match["action"]) == ("layoffs", "example", "refuse")
    assert (
        match["score"] >= DEFAULT_EXAMPLE_THRESHOLD
        and match["by"] in CONFIG["policy"]["prohibited_topics"][0]["examples"]
    )
    allowed = policy(notice)
    assert allowed["topic_match"] is None
    assert allowed["allowed_by"][0]["rule"] == "layoffs"
    assert allowed["allowed_by"][0]["how"] == "allow_example"
    human = policy(concierge)["human_match"]
    assert (human["rule"], human["how"]) == ("asks_for_human", "example")


async def test_policy_runs_first_and_shares_the_question_embedding(
    demo_settings: Settings,
) -> None:
    from bot.wiring import build_services
    from core.answering.types import Asker, Question

    services = await build_services(
        Settings(data_dir=demo_settings.data_dir, policy=CONFIG["policy"])
    )
    try:
        refused = await services.answers.answer(
            Question("Are layoffs coming to Portland?", Asker(JORDAN))
        )
        assert refused.mode == "refused"
        stages = refused.trace["stages"]
        assert list(stages) == ["policy"]  # nothing else ran: no retrieval, no model
        assert stages["policy"]["topic_match"]["how"] == "word_form"
        assert stages["policy"]["languages"][0] == "en"
        answered = await services.answers.answer(
            Question("How long does a guest Wi-Fi pass last?", Asker(JORDAN))
        )
        assert answered.trace["stages"]["embed"]["reused"] is True
        assert answered.trace["stages"]["policy"]["examples"] == "used"
    finally:
        await services.close()


def test_config_check_lists_governance(tmp_path: Path) -> None:
    """Both README examples in one file (the tier example needs OPENAI_API_KEY)."""
    data = {**CONFIG, **BOUNDARY_EXAMPLE, "ingest": {"default_classification": "confidential"}}
    config = tmp_path / "answerdesk.yaml"
    config.write_text(yaml.safe_dump(data))
    env = {"ANSWERDESK_CONFIG": str(config), "OPENAI_API_KEY": "sk-test"}
    done = run(tmp_path, "config", "check", env=env)
    assert done.returncode == 0, done.stderr
    checks = done.stdout.split("# what the configured features need")[1].strip().splitlines()
    lines = {line.split(":")[0].split()[-1]: line for line in checks}
    assert "external tools off" in lines["governance.tools"]
    assert (
        "layoffs → refuse (6 patterns, 4 examples at ≥ 0.50, 3 allowed near-misses)"
        in lines["governance.topics"]
    )
    assert "built-in + 0 patterns, 1 examples" in lines["governance.human_request"]
    boundaries = lines["governance.boundaries"]
    assert "documents default to confidential" in boundaries
    assert "'fast' ← public, internal" in boundaries
    assert "'local' ← public, internal, confidential, restricted" in boundaries
    report = json.loads(run(tmp_path, "config", "check", "--json", env=env).stdout)
    assert report["effective"]["policy"]["example_threshold"] == DEFAULT_EXAMPLE_THRESHOLD
    assert report["effective"]["models"]["tiers"][0]["allowed_classifications"] == [
        "public",
        "internal",
    ]


def test_bad_governance_settings_are_one_line(tmp_path: Path) -> None:
    for text, needle in (
        ("policy:\n  question_languages: [en, xx]\n", "question_languages must be among"),
        (
            "policy:\n  prohibited_topics:\n    - {name: a, action: refuse, message: m}\n",
            "needs patterns or examples",
        ),
        (
            "models:\n  tiers:\n    - {name: a, model: openai/x, "
            "allowed_classifications: [secret]}\n",
            "allowed_classifications",
        ),
        ("ingest:\n  default_classification: top-secret\n", "default_classification"),
    ):
        config = tmp_path / "bad.yaml"
        config.write_text(text)
        done = run(tmp_path, "config", "check", env={"ANSWERDESK_CONFIG": str(config)})
        assert done.returncode == 2, text
        assert needle in done.stderr, (needle, done.stderr)
