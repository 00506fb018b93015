"""The pre-launch checklist (`answerdesk preflight`): every item passes or fails with a
one-line reason and what to do. Items that need the index (the ACL self-test and the
evaluation library) run where the index is (`index_items`, handed to a running service in
the embedded setup); the others run in the command's process (`other_items`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from core.answering.model import TierSpec

log = structlog.get_logger()
PROBE_MESSAGES = [{"role": "user", "content": "Reply with the single word OK."}]
ORDER = (
    "service_agreement",
    "cost",
    "acl_self_test",
    "evaluation",
    "tracing",
    "metrics",
    "log_redaction",
    "retention",
    "rollback",
    "slack",
    "teams",
    "tickets",
    "models",
)


def item(name: str, passed: bool, reason: str, action: str = "") -> dict[str, Any]:
    return {"name": name, "passed": passed, "reason": reason, "action": "" if passed else action}


# ------------------------------------------------------------------ where the index is


async def index_items(services: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The ACL self-test and the evaluation library, through the active release. Leftovers
    of killed runs are swept first."""
    from adapters.db.preflight import PreflightStore
    from bot.acl_probe import acl_self_test, sweep
    from bot.release_gate import evaluate
    from core.evaluation.compare import compare, leaked, regressions
    from core.evaluation.library import LibraryError, load_library

    await services.answers.refresh(force=True)  # the release active now
    await PreflightStore(services.engine).probing(params["run"])
    swept = await sweep(services)
    acl = await acl_self_test(services, params["run"])
    try:
        library = load_library(Path(params["library"]))
    except LibraryError as exc:
        failed = item("evaluation", False, str(exc), "fix the library (releases.gate_library)")
        return {"swept": swept, "acl": acl, "evaluation": failed, "calls": [], "requests": 0}
    concurrency = services.settings.releases.gate_concurrency
    run = await evaluate(services, services.answers.state.active, library, concurrency)
    leaks = leaked(run.summary)
    name = f"{library.name} ({len(library.cases)} cases)"
    if leaks:
        evaluation = item(
            "evaluation", False, f"{name}: {leaks} case(s) leaked documents", "do not launch"
        )
    elif library.baseline is None or not library.baseline.is_file():
        evaluation = item(
            "evaluation",
            False,
            f"{name}: no baseline to hold the thresholds to",
            "run `answerdesk eval LIBRARY --report DIR` on an approved setup and set the "
            "library's `baseline:` to DIR/summary.json",
        )
    else:
        import json

        baseline = json.loads(library.baseline.read_text(encoding="utf-8"))
        found = regressions(compare(run.summary, baseline, library.tolerance))
        evaluation = (
            item(
                "evaluation",
                False,
                f"{name}: {found[0].describe()}"
                + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""),
                "find what made answers worse (`answerdesk eval LIBRARY --baseline "
                "FILE --report DIR` shows every case), or accept it and refresh the baseline",
            )
            if found
            else item("evaluation", True, f"{name}: at or above its baseline, 0 leaks")
        )
    return {
        "swept": swept,
        "acl": acl,
        "evaluation": evaluation,
        "calls": run.calls,
        "requests": run.requests,
    }


# ------------------------------------------------------------------ the rest, from here


@dataclass
class Facts:
    """What the items judge: the settings, the active release's settings and tiers, the
    evaluation's model calls."""

    settings: Settings
    engine: AsyncEngine
    release: Settings  # the settings with the active release's sections
    tiers: Sequence[TierSpec]
    calls: list[dict[str, Any]]
    requests: int


async def other_items(facts: Facts) -> list[dict[str, Any]]:
    checks: list[Callable[[Facts], Awaitable[dict[str, Any]]]] = [
        _agreement,
        _cost,
        _tracing,
        _metrics,
        _log_redaction,
        _retention,
        _rollback,
        _slack,
        _teams,
        _tickets,
        _models,
    ]
    results = await asyncio.gather(*(check(facts) for check in checks), return_exceptions=True)
    out = []
    for check, result in zip(checks, results, strict=True):
        if isinstance(result, BaseException):
            name = check.__name__.lstrip("_")
            log.warning("preflight item failed to run", item=name, error=type(result).__name__)
            result = item(name, False, f"could not be checked ({type(result).__name__})", "retry")
        out.append(result)
    return out


def _slo(settings: Settings) -> tuple[Any, str | None]:
    from bot.slo_file import SloFileError, load_slo_file

    if settings.slo.file is None:
        return None, "no service agreement (slo.file is not set)"
    try:
        return load_slo_file(Path(settings.slo.file)), None
    except SloFileError as exc:
        return None, str(exc)


async def _agreement(facts: Facts) -> dict[str, Any]:
    spec, problem = _slo(facts.settings)
    action = (
        "write slo.yaml with the agreed targets, an owner for each, approved_by and "
        "approved_on (README, The service agreement), and set slo.file"
    )
    if problem:
        return item("service_agreement", False, problem, action)
    if spec.approved_on > date.today():
        return item(
            "service_agreement",
            False,
            f"approved_on {spec.approved_on} is in the future",
            "set approved_on to the day it was approved",
        )
    count = len(spec.to_objectives())
    return item(
        "service_agreement",
        True,
        f"{count} objectives, each with an owner; approved by {spec.approved_by} on "
        f"{spec.approved_on}",
    )


async def _cost(facts: Facts) -> dict[str, Any]:
    """A monthly budget and a per-request cap the tiers can meet, estimated from the
    token counts of the evaluation run through the active release."""
    spec, problem = _slo(facts.settings)
    budget = spec.objectives.monthly_budget if spec else None
    if budget is None:
        return item(
            "cost",
            False,
            problem or "the service agreement has no monthly_budget",
            "agree a monthly budget with its owner (objectives.monthly_budget in slo.yaml)",
        )
    if not facts.tiers:
        return item("cost", True, f"no model tier: answers cost nothing (budget ${budget.usd:g})")
    cap = facts.release.models.budget.max_cost_per_request_usd
    if cap is None:
        return item(
            "cost",
            False,
            "no per-request cost cap",
            "set models.budget.max_cost_per_request_usd in the release",
        )
    if not facts.calls or not facts.requests:
        return item(
            "cost",
            False,
            "the evaluation run made no model call to estimate costs from",
            "make the model tiers answer (see the models item) and run preflight again",
        )
    from adapters.llm.litellm_client import LiteLLMClient

    prices = LiteLLMClient()
    tokens_in = sum(c["input_tokens"] for c in facts.calls) / facts.requests
    tokens_out = sum(c["output_tokens"] for c in facts.calls) / facts.requests
    estimates = {}
    for tier in facts.tiers:
        price_in, price_out = prices.prices(tier)
        estimates[tier.name] = tokens_in * price_in + tokens_out * price_out
    shown = ", ".join(f"{name} ${cost:.5f}" for name, cost in estimates.items())
    cheapest = min(estimates.values())
    if cheapest > cap:
        return item(
            "cost",
            False,
            f"a request costs about {shown} (from {tokens_in:.0f} input and {tokens_out:.0f} "
            f"output tokens), over the cap ${cap:g}",
            "raise models.budget.max_cost_per_request_usd or add a cheaper tier",
        )
    per_request = sum(c["cost_usd"] for c in facts.calls) / facts.requests
    volume, source = budget.expected_requests, "expected"
    if volume is None:
        volume, source = await _monthly_traffic(facts.engine), "last 30 days"
    if not volume:
        return item(
            "cost",
            False,
            f"a request costs about {shown}, within the cap ${cap:g}; no volume to project "
            "the monthly budget over",
            "set objectives.monthly_budget.expected_requests in slo.yaml",
        )
    monthly = per_request * volume
    if monthly > budget.usd:
        return item(
            "cost",
            False,
            f"{volume} requests a month ({source}) at ${per_request:.5f} is ${monthly:.2f}, "
            f"over the monthly budget ${budget.usd:g}",
            "agree a larger budget, or route more to cheaper tiers",
        )
    return item(
        "cost",
        True,
        f"a request costs about {shown} (cap ${cap:g}); {volume} requests a month ({source}) "
        f"≈ ${monthly:.2f} of ${budget.usd:g}",
    )


async def _monthly_traffic(engine: AsyncEngine) -> int:
    from adapters.db.models import TraceRow
    from core.evaluation.runner import PLATFORM

    since = datetime.fromtimestamp(time.time() - 30 * 86400, UTC)
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(TraceRow)
            .where(TraceRow.created_at >= since, TraceRow.platform.not_in([PLATFORM, "preflight"]))
        )
    return int(count or 0)


async def _tracing(facts: Facts) -> dict[str, Any]:
    from bot.wiring import otlp_endpoint

    endpoint = otlp_endpoint()
    if not endpoint:
        return item(
            "tracing",
            False,
            "traces stay in the database only: no OTLP export",
            "set OTEL_EXPORTER_OTLP_ENDPOINT to your tracing backend (README, Tracing)",
        )
    return item("tracing", True, f"every request is traced and exported over OTLP to {endpoint}")


async def _metrics(facts: Facts) -> dict[str, Any]:
    cfg = facts.settings
    if not cfg.metrics.enabled:
        return item("metrics", False, "metrics are off", "set metrics.enabled: true")
    if cfg.metrics.token is None and not (cfg.admin.enabled and cfg.admin.user):
        return item(
            "metrics",
            False,
            "GET /metrics is open to anyone who reaches the port",
            "set ANSWERDESK_METRICS_TOKEN (and give it to Prometheus)",
        )
    return item("metrics", True, "GET /metrics is on and needs a token or a console session")


async def _log_redaction(facts: Facts) -> dict[str, Any]:
    redaction = facts.settings.tracing.redaction
    pii = facts.release.policy.pii_redaction
    if redaction == "none" or not pii:
        what = "tracing.redaction is none" if redaction == "none" else "policy.pii_redaction is off"
        return item(
            "log_redaction",
            False,
            f"{what}: message text is kept as written",
            "set tracing.redaction: pii (or all) and policy.pii_redaction: true",
        )
    return item(
        "log_redaction",
        True,
        f"PII is redacted before models, cache and memory; traces and logs keep {redaction}",
    )


async def _retention(facts: Facts) -> dict[str, Any]:
    from adapters.db.engine import as_utc
    from adapters.db.models import TraceRow
    from bot.durations import parse_duration

    max_age = facts.settings.retention.max_age
    if max_age is None:
        return item(
            "retention",
            False,
            "no retention period",
            "set retention.max_age (e.g. 30d) and run `answerdesk maintenance purge` daily",
        )
    async with facts.engine.connect() as conn:
        oldest = await conn.scalar(select(func.min(TraceRow.created_at)))
    limit = parse_duration(max_age) + 86400  # a day's grace: purge runs daily
    if oldest is not None and time.time() - as_utc(oldest).timestamp() > limit:
        return item(
            "retention",
            False,
            f"traces from {as_utc(oldest):%Y-%m-%d} are older than {max_age}: purge is not running",
            "run `answerdesk maintenance purge` daily (cron)",
        )
    return item("retention", True, f"traces, memory and cache entries are kept {max_age}")


async def _rollback(facts: Facts) -> dict[str, Any]:
    from adapters.db.releases import SqlReleaseStore

    store = SqlReleaseStore(facts.engine)
    state = await store.state()
    previous = await store.previous()
    if state.active is None or previous is None:
        reason = (
            "no release is active (the configuration file's settings answer)"
            if state.active is None
            else f"release {state.active} replaced none"
        )
        return item(
            "rollback",
            False,
            f"{reason}: nothing to roll back to",
            "create a release and activate it: `answerdesk release create --from FILE --note "
            "…`, then `answerdesk release activate ID`",
        )
    return item(
        "rollback", True, f"release {state.active} is active; a rollback returns to {previous}"
    )


async def _slack(facts: Facts) -> dict[str, Any]:
    from adapters.slack.credentials import slack_credentials
    from bot.wiring import slack_environment

    cfg = facts.settings.slack
    environment = slack_environment(cfg)
    if not environment:
        return item("slack", True, "Slack is not configured")
    credentials = slack_credentials(environment, socket_mode=cfg.socket_mode)
    if isinstance(credentials, str):
        return item("slack", False, credentials, "set the variables (README, Connect to Slack)")
    token = credentials.bot_token or await _installed_bot_token(facts.engine)
    if token is None:
        return item(
            "slack",
            False,
            "no workspace has installed the app yet",
            "install it through /slack/install",
        )
    from adapters.slack.client import web_client

    try:
        answer = await web_client(token, cfg.api_base_url).auth_test()
    except Exception as exc:  # SlackApiError carries Slack's error code
        error = getattr(getattr(exc, "response", None), "get", lambda _k: None)("error")
        return item(
            "slack",
            False,
            f"auth.test failed: {error or type(exc).__name__}",
            "check SLACK_BOT_TOKEN (or reinstall the app) and slack.api_base_url",
        )
    return item("slack", True, f"auth.test ok: bot {answer.get('user')} in {answer.get('team')}")


async def _installed_bot_token(engine: AsyncEngine) -> str | None:
    from sqlalchemy import text

    async with engine.connect() as conn:
        try:
            return await conn.scalar(
                text("SELECT bot_token FROM slack_bots ORDER BY installed_at DESC LIMIT 1")
            )
        except Exception:  # no installation table: nothing installed
            return None


async def _teams(facts: Facts) -> dict[str, Any]:
    from bot.wiring import teams_setup

    cfg = facts.settings.teams
    if not cfg.app_id and cfg.app_password is None:
        return item("teams", True, "Teams is not configured")
    setup = teams_setup(cfg)
    if isinstance(setup, str):
        return item("teams", False, setup, "set the Teams variables (README, Teams)")
    form = {
        "grant_type": "client_credentials",
        "client_id": setup.app_id,
        "client_secret": setup.app_password,
        "scope": "https://api.botframework.com/.default",
    }
    try:
        timeout = aiohttp.ClientTimeout(total=15)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(setup.token_url, data=form) as response,
        ):
            body = await response.json(content_type=None)
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return item(
            "teams",
            False,
            f"the token endpoint {setup.token_url} cannot be reached ({type(exc).__name__})",
            "check teams.token_url and the network",
        )
    if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
        error = body.get("error") if isinstance(body, dict) else None
        return item(
            "teams",
            False,
            f"no token for app {setup.app_id}: {status} {error or ''}".strip(),
            "check MICROSOFT_APP_ID, MICROSOFT_APP_PASSWORD and the app's tenant",
        )
    return item("teams", True, f"app {setup.app_id} gets a Bot Framework token")


async def _tickets(facts: Facts) -> dict[str, Any]:
    from bot.handoff import ticket_system

    cfg = facts.settings.handoff
    system = ticket_system(cfg, facts.settings.tickets.url_base)
    try:
        return item("tickets", True, await system.probe())
    except Exception as exc:
        return item(
            "tickets",
            False,
            f"{cfg.provider} cannot take tickets: {exc or type(exc).__name__}",
            f"check handoff.{cfg.provider} and its credentials (README, Human handoff)",
        )
    finally:
        await system.close()


async def _models(facts: Facts) -> dict[str, Any]:
    if not facts.tiers:
        return item("models", True, "no model tier: the extractive tier answers (quoted passages)")
    from adapters.llm.litellm_client import LiteLLMClient

    client = LiteLLMClient()

    async def probe(tier: TierSpec) -> str | None:
        started = time.monotonic()
        try:
            await asyncio.wait_for(
                client.complete(tier, PROBE_MESSAGES, tier.timeout_s), tier.timeout_s + 1
            )
        except Exception as exc:
            kind = getattr(exc, "kind", None) or type(exc).__name__
            return f"{tier.name} ({tier.model}): {kind} after {time.monotonic() - started:.1f} s"
        return None

    failures = [f for f in await asyncio.gather(*(probe(t) for t in facts.tiers)) if f]
    if failures:
        answered = len(facts.tiers) - len(failures)
        fallback = (
            f"{answered} other tier(s) answered" if answered else "answers would be quotations only"
        )
        return item(
            "models",
            False,
            f"no answer within the timeout from {'; '.join(failures)}; {fallback}",
            "fix the tier (endpoint, key, timeout_s) or remove it from the release",
        )
    timeouts = ", ".join(f"{t.name} ≤ {t.timeout_s:g} s" for t in facts.tiers)
    return item("models", True, f"every tier answered its probe in time ({timeouts})")


def ordered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: ORDER.index(i["name"]) if i["name"] in ORDER else 99)
