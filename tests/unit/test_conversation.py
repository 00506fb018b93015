"""The conversation layer against an in-memory surface and identity port, with the real SQL
store, directory and ticket queue (SQLite, and PostgreSQL where marked)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db.conversations import SqlConversationStore
from adapters.db.directory import SqlDirectory
from adapters.db.engine import create_engine, upgrade
from adapters.db.tickets import DbTicketQueue
from adapters.tickets.builtin import BuiltinQueue
from core.answering.progress import ProgressSink
from core.answering.types import Answer, Audience, Mode, Notice, NoticeCode, Question
from core.conversation.messages import (
    OFFER_HUMAN_TEXT,
    Action,
    AnswerMessage,
    Message,
    Progress,
    TextMessage,
    Working,
)
from core.conversation.outbound import (
    Outbound,
    PlatformNotConfigured,
    UnconfiguredPlatform,
    UnknownRequest,
)
from core.conversation.ports import Chat, Reply, Surface, Unreachable
from core.conversation.reply import WorkingMessage
from core.conversation.service import ConversationConfig, ConversationService
from core.conversation.types import (
    ChatUser,
    ConversationInfo,
    ConversationKind,
    ConversationRef,
    PostedAnswer,
    Turn,
    Vote,
)
from core.directory import DirectoryEntry, PlatformIdentity
from core.handoff.content import ContentBuilder, ContentConfig
from core.handoff.service import Handoffs

ADA = ChatUser("U1ADA", ("T1",))  # in the directory under the workspace
BEN = ChatUser("U2BEN", ("T1", "E1"))  # in the directory under the Grid org only
CY = ChatUser("U3CY", ("T1",))  # unknown to the directory; the platform has an email
DEE = ChatUser("U4DEE", ("T1",))  # unknown everywhere
PLATFORM_EMAILS = {"U1ADA": "ada.platform@x.example", "U3CY": "Cy@Example.COM", "U4DEE": None}
PUBLIC_C, PRIVATE_C, EMPTY_C, DM_C = "C0PUB", "G0PRIV", "G0EMPTY", "D0ADA"
THREAD = ConversationRef("slack", "T1", PUBLIC_C, "100.1", message="100.1")


@dataclass
class MemorySurface:
    """Records what the layer asks a platform to show; can refuse posts."""

    refuse_posts: int = 0
    posts: list[tuple[ConversationRef, str, Message]] = field(default_factory=list)
    updates: list[tuple[ConversationRef, str, Message]] = field(default_factory=list)
    private: list[tuple[ConversationRef, str, Message]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def post(self, where: ConversationRef, message: Message) -> str | None:
        if self.refuse_posts:
            self.refuse_posts -= 1
            return None
        message_id = f"m{next(self._ids)}"
        self.posts.append((where, message_id, message))
        return message_id

    async def update(self, where: ConversationRef, message_id: str, message: Message) -> bool:
        self.updates.append((where, message_id, message))
        return True

    async def post_privately(self, where: ConversationRef, user_id: str, message: Message) -> bool:
        self.private.append((where, user_id, message))
        return True

    async def reply(self, turn: Turn) -> Reply:
        return await WorkingMessage.post(self, turn.where)

    def offers(self) -> list[TextMessage]:
        return [m for _, _, m in self.posts if isinstance(m, TextMessage) and m.offer_human]


@dataclass
class MemoryIdentity:
    emails: dict[str, str | None] = field(default_factory=lambda: dict(PLATFORM_EMAILS))
    conversations: dict[str, ConversationInfo | None] = field(
        default_factory=lambda: {
            PUBLIC_C: ConversationInfo(ConversationKind.PUBLIC),
            PRIVATE_C: ConversationInfo(
                ConversationKind.PRIVATE, ("U1ADA", "U2BEN", "U3CY", "U4DEE", "U5EVE")
            ),
            EMPTY_C: ConversationInfo(ConversationKind.PRIVATE, ()),
            DM_C: ConversationInfo(ConversationKind.DIRECT),
        }
    )
    asked: list[str] = field(default_factory=list)
    described: list[str] = field(default_factory=list)

    async def email_of(self, user: ChatUser) -> str | None:
        self.asked.append(user.id)
        return self.emails.get(user.id)

    async def describe(self, where: ConversationRef) -> ConversationInfo | None:
        self.described.append(where.conversation)
        return self.conversations.get(where.conversation)


@dataclass
class RecordingAnswerer:
    """Answers every question, remembering it; offers the private answer when asked to."""

    private_available: bool = False
    steps: list[Progress] = field(default_factory=list)  # reported while answering
    questions: list[Question] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def answer(self, question: Question, progress: ProgressSink | None = None) -> Answer:
        self.questions.append(question)
        for step in self.steps:
            if progress is not None:
                await progress(step)
        notices = []
        if self.private_available and question.audience.kind != "dm":
            notices.append(Notice(NoticeCode.PRIVATE_ANSWER_AVAILABLE, "ask me privately"))
        return Answer(f"req{next(self._ids):04d}", Mode.ANSWER, "the answer", notices=notices)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'conversations.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade(db_url)
    engine = create_engine(db_url)
    await SqlDirectory(engine).import_entries(
        [
            DirectoryEntry(
                "ada@x.example", "Ada", ("hr",), (PlatformIdentity("slack", "T1", ADA.id),)
            ),
            DirectoryEntry("ben@x.example", "Ben", (), (PlatformIdentity("slack", "E1", BEN.id),)),
        ],
        replace=False,
    )
    yield engine
    await engine.dispose()


@dataclass
class Layer:
    service: ConversationService
    store: SqlConversationStore
    tickets: DbTicketQueue
    answers: RecordingAnswerer
    surface: MemorySurface
    identity: MemoryIdentity

    @property
    def chat(self) -> Chat:
        return Chat(self.surface, self.identity)

    async def ask(self, where: ConversationRef = THREAD, asker: ChatUser = ADA) -> PostedAnswer:
        return await self.service.answer(Turn(where, asker, "How many days off?"), self.chat)


def layer(engine: AsyncEngine, **config: float) -> Layer:
    store = SqlConversationStore(engine)
    tickets = DbTicketQueue(engine)
    handoffs = Handoffs(
        tickets, BuiltinQueue("https://desk.example"), ContentBuilder(None, ContentConfig())
    )
    answers = RecordingAnswerer()
    service = ConversationService(
        answers, SqlDirectory(engine), handoffs, store, ConversationConfig(**config)
    )
    return Layer(service, store, tickets, answers, MemorySurface(), MemoryIdentity())


# --- who asks, who reads ------------------------------------------------------------------


async def test_identity_order_directory_by_platform_id_then_the_platforms_email(
    engine: AsyncEngine,
) -> None:
    one = layer(engine)
    people, identity = one.service.people, one.identity
    assert await people.email_of(identity, "slack", ADA) == "ada@x.example"
    assert await people.email_of(identity, "slack", BEN) == "ben@x.example"  # via the org
    assert identity.asked == []  # the directory knew both: the platform was not asked
    assert await people.email_of(identity, "slack", CY) == "cy@example.com"  # lower-cased
    assert await people.email_of(identity, "slack", DEE) is None
    # Ada's id under another workspace is not Ada: the platform's email is used instead.
    elsewhere = ChatUser(ADA.id, ("T9",))
    assert await people.email_of(identity, "slack", elsewhere) == "ada.platform@x.example"
    # Teams ids are not Slack ids, even when equal.
    assert await people.email_of(identity, "teams", ADA) == "ada.platform@x.example"
    assert identity.asked == [CY.id, DEE.id, ADA.id, ADA.id]


async def test_audience_from_the_conversation_kind_and_members(engine: AsyncEngine) -> None:
    one = layer(engine)
    people, identity = one.service.people, one.identity

    def at(conversation: str) -> ConversationRef:
        return ConversationRef("slack", "T1", conversation, "1.0")

    assert await people.audience(identity, at(DM_C), ADA.tenants) == Audience("dm")
    assert await people.audience(identity, at(PUBLIC_C), ADA.tenants) == Audience("public")
    private = await people.audience(identity, at(PRIVATE_C), BEN.tenants)
    assert private == Audience(
        "members",
        (
            "ada@x.example",  # directory by id
            "ben@x.example",  # directory by id under the org
            "cy@example.com",  # the platform's email
            "unknown-slack-member-u4dee@invalid",  # nothing known: resolves to public only
            "unknown-slack-member-u5eve@invalid",
        ),
    )
    # A private conversation whose members are not known, or one the platform cannot
    # describe, is answered for the safest audience.
    assert await people.audience(identity, at(EMPTY_C), ADA.tenants) == Audience("public")
    assert await people.audience(identity, at("C0GONE"), ADA.tenants) == Audience("public")


async def test_audience_is_reused_for_its_ttl_but_an_unknown_one_is_not(
    engine: AsyncEngine,
) -> None:
    cached, fresh = layer(engine), layer(engine, audience_ttl_s=0)
    where = ConversationRef("slack", "T1", PRIVATE_C, "1.0")
    gone = ConversationRef("slack", "T1", "C0GONE", "1.0")
    for one in (cached, fresh):
        for _ in range(3):
            await one.service.people.audience(one.identity, where, ADA.tenants)
            await one.service.people.audience(one.identity, gone, ADA.tenants)
    assert cached.identity.described == [PRIVATE_C, "C0GONE", "C0GONE", "C0GONE"]
    assert fresh.identity.described == [PRIVATE_C, "C0GONE"] * 3


# --- a turn -----------------------------------------------------------------------------------


async def test_a_turn_posts_working_then_the_answer_and_records_it(engine: AsyncEngine) -> None:
    one = layer(engine)
    turn = Turn(THREAD, CY, "Mail cy@example.com the leave policy?")
    posted = await one.service.answer(turn, one.chat)

    [question] = one.answers.questions
    assert question.text == turn.text
    assert (question.asker.email, question.asker.platform) == ("cy@example.com", "slack")
    assert (question.asker.platform_user_id, question.asker.tenant_id) == (CY.id, "T1")
    assert question.audience == Audience("public")
    assert question.conversation_id == "slack:T1:C0PUB:100.1"  # memory's key, as before
    assert question.platform == "slack"

    [(where, working_id, working)] = one.surface.posts
    assert where == THREAD and isinstance(working, Working)
    [(where, updated_id, message)] = one.surface.updates
    assert updated_id == working_id
    assert isinstance(message, AnswerMessage) and message.request_id == posted.request_id
    assert message.offer_private is False

    stored = await one.store.get(posted.request_id)
    assert stored == posted
    assert stored.where == THREAD and stored.asker_id == CY.id
    assert stored.answer_message == working_id
    assert "cy@example.com" not in stored.question  # PII-redacted before it is stored


async def test_without_a_working_message_the_answer_is_posted_and_its_id_recorded(
    engine: AsyncEngine,
) -> None:
    one = layer(engine)
    one.surface.refuse_posts = 1  # the working message fails
    posted = await one.ask()
    [(_, message_id, message)] = one.surface.posts
    assert isinstance(message, AnswerMessage) and one.surface.updates == []
    assert posted.answer_message == message_id
    assert (await one.store.get(posted.request_id)).answer_message == message_id  # type: ignore[union-attr]


async def test_progress_reaches_the_reply_and_status_steps_show_in_the_working_message(
    engine: AsyncEngine,
) -> None:
    one = layer(engine)
    one.answers.steps = [Progress(status="Searching the documents…"), Progress(delta="Draft")]
    posted = await one.ask()
    [(_, working_id, _)] = one.surface.posts
    status, final = one.surface.updates
    # A surface that does not stream shows the status step, never the unchecked draft.
    assert (status[1], status[2]) == (working_id, Working("Searching the documents…"))
    assert isinstance(final[2], AnswerMessage) and final[1] == working_id
    assert posted.answer_message == working_id


@dataclass
class StreamingReply:
    """A reply that streams into a message of its own, as Slack's does."""

    steps: list[Progress] = field(default_factory=list)
    finished: list[AnswerMessage] = field(default_factory=list)
    message_id: str | None = "working-1"

    async def progress(self, step: Progress) -> None:
        self.steps.append(step)

    async def finish(self, message: AnswerMessage) -> str | None:
        self.finished.append(message)
        return "streamed-2"


async def test_an_answer_that_ends_in_another_message_is_recorded_under_that_one(
    engine: AsyncEngine,
) -> None:
    one = layer(engine)
    reply = StreamingReply()

    async def streaming_reply(turn: Turn) -> Reply:
        return reply

    one.surface.reply = streaming_reply  # type: ignore[method-assign]
    one.answers.steps = [Progress(delta="The "), Progress(delta="answer")]
    posted = await one.ask()
    assert reply.steps == one.answers.steps  # in order, as the answer flow reported them
    [message] = reply.finished
    assert message.request_id == posted.request_id
    assert posted.answer_message == "streamed-2"
    assert (await one.store.get(posted.request_id)).answer_message == "streamed-2"  # type: ignore[union-attr]


async def test_the_private_answer_is_offered_when_the_answer_says_so(engine: AsyncEngine) -> None:
    one = layer(engine)
    one.answers.private_available = True
    await one.ask()
    [(_, _, message)] = one.surface.updates
    assert isinstance(message, AnswerMessage) and message.offer_private is True


async def test_follow_ups_are_replies_in_a_thread_the_bot_answered(engine: AsyncEngine) -> None:
    one = layer(engine)
    await one.ask()
    other_tenant = ConversationRef("slack", "T2", PUBLIC_C, "100.1")  # a shared channel
    assert await one.service.answered_in(Turn(other_tenant, CY, "and for Plus?"))
    for where in (
        ConversationRef("slack", "T1", PUBLIC_C, "999.9"),
        ConversationRef("slack", "T1", "C0OTHER", "100.1"),
        ConversationRef("teams", "T1", PUBLIC_C, "100.1"),
    ):
        assert not await one.service.answered_in(Turn(where, CY, "and for Plus?"))


# --- votes and the offer of a person -------------------------------------------------------


async def test_the_second_down_vote_in_a_thread_offers_a_person_once(engine: AsyncEngine) -> None:
    one = layer(engine)
    first, second = await one.ask(), await one.ask()  # two answers in one thread
    act = one.service.act
    await act(Action.HELPFUL, first.request_id, CY, one.chat)
    await act(Action.NOT_HELPFUL, first.request_id, ADA, one.chat)
    assert one.surface.offers() == []
    await act(Action.HELPFUL, second.request_id, BEN, one.chat)
    assert one.surface.offers() == []  # a 👍 never counts
    await act(Action.NOT_HELPFUL, second.request_id, DEE, one.chat)  # 2nd 👎 in the thread
    [offer] = one.surface.offers()
    assert offer.text == OFFER_HUMAN_TEXT and offer.request_id == second.request_id
    assert one.surface.posts[-1][0] == THREAD
    await act(Action.NOT_HELPFUL, first.request_id, CY, one.chat)
    await act(Action.NOT_HELPFUL, second.request_id, BEN, one.chat)
    assert len(one.surface.offers()) == 1  # once per thread

    # One vote per person and answer; the last one counts.
    assert sorted(await one.store.votes(first.request_id), key=lambda v: v.voter) == [
        Vote(ADA.id, -1),
        Vote(CY.id, -1),
    ]
    assert await one.store.feedback_for(second.request_id) == [
        {"user": DEE.id, "value": -1},
        {"user": BEN.id, "value": -1},
    ]

    # Another thread has its own count and its own offer.
    elsewhere = await one.ask(ConversationRef("slack", "T1", PUBLIC_C, "200.2"))
    await act(Action.NOT_HELPFUL, elsewhere.request_id, ADA, one.chat)
    await act(Action.NOT_HELPFUL, elsewhere.request_id, ADA, one.chat)  # same person again
    assert len(one.surface.offers()) == 1
    await act(Action.NOT_HELPFUL, elsewhere.request_id, CY, one.chat)
    assert len(one.surface.offers()) == 2


async def test_concurrent_down_votes_on_several_replicas_offer_a_person_once_per_thread(
    db_url: str, engine: AsyncEngine
) -> None:
    """Real concurrency: three replicas (each its own engine and service) receive 👎 from
    eight people at the same moment, in each of four threads."""
    engines = [create_engine(db_url) for _ in range(3)]
    replicas = [layer(replica) for replica in engines]
    try:
        threads = [ConversationRef("slack", "T1", PUBLIC_C, f"{n}.5") for n in range(4)]
        answers = [await replicas[0].ask(where) for where in threads]
        votes = [
            replicas[(n + voter) % 3].service.act(
                Action.NOT_HELPFUL,
                answer.request_id,
                ChatUser(f"U{voter:03d}", ("T1",)),
                replicas[(n + voter) % 3].chat,
            )
            for voter in range(8)
            for n, answer in enumerate(answers)
        ]
        await asyncio.gather(*votes)
        offers = [offer for one in replicas for offer in one.surface.offers()]
        assert sorted(o.request_id for o in offers) == sorted(a.request_id for a in answers)
        for answer in answers:
            assert len(await replicas[1].store.votes(answer.request_id)) == 8
    finally:
        for replica in engines:
            await replica.dispose()


# --- talk to a human, the private answer ------------------------------------------------------


async def test_talk_to_a_human_opens_a_ticket_for_the_clicker_and_says_so(
    engine: AsyncEngine,
) -> None:
    one = layer(engine)
    posted = await one.ask(asker=CY)
    await one.service.act(Action.HUMAN, posted.request_id, BEN, one.chat)
    [ticket] = await one.tickets.list()
    assert ticket["request_id"] == posted.request_id
    assert ticket["conversation_id"] == "slack:T1:C0PUB:100.1"
    assert ticket["asker"] == "ben@x.example"
    assert ticket["question"] == posted.question
    assert ticket["reason"] == "asked for a human (slack button)"
    where, _, notice = one.surface.posts[-1]
    assert where == THREAD and isinstance(notice, TextMessage)
    assert f"[{ticket['id']}](https://desk.example/tickets/{ticket['id']})" in notice.text
    assert notice.request_id == posted.request_id and not notice.offer_human


async def test_only_the_asker_gets_the_private_answer_answered_for_a_dm(
    engine: AsyncEngine,
) -> None:
    one = layer(engine)
    one.answers.private_available = True
    posted = await one.ask(ConversationRef("slack", "T1", PRIVATE_C, "300.3"), asker=ADA)
    assert one.answers.questions[0].audience.kind == "members"

    await one.service.act(Action.PRIVATE, posted.request_id, CY, one.chat)  # not the asker
    assert len(one.answers.questions) == 1 and one.surface.private == []

    await one.service.act(Action.PRIVATE, posted.request_id, ADA, one.chat)
    private = one.answers.questions[-1]
    assert private.audience == Audience("dm")
    assert private.text == posted.question
    assert (private.asker.email, private.asker.platform_user_id) == ("ada@x.example", ADA.id)
    [(where, user, message)] = one.surface.private
    assert (where, user) == (posted.where, ADA.id)
    assert isinstance(message, AnswerMessage) and message.offer_private is False
    # Recorded, so the private answer's own buttons act on it.
    recorded = await one.store.get(message.request_id)
    assert recorded is not None and recorded.asker_id == ADA.id and recorded.where == posted.where


async def test_a_button_for_an_unknown_request_does_nothing(engine: AsyncEngine) -> None:
    one = layer(engine)
    for action in Action:
        await one.service.act(action, "no-such-request", ADA, one.chat)
    assert one.surface.posts == [] and one.surface.private == [] and one.answers.questions == []
    assert await one.tickets.list() == []


# --- posting from outside a turn --------------------------------------------------------------


@dataclass
class MemorySurfaces:
    surface: MemorySurface
    opened: list[ConversationRef] = field(default_factory=list)

    async def open(self, where: ConversationRef) -> Surface:
        self.opened.append(where)
        return self.surface


async def test_say_posts_into_the_thread_the_request_came_from(engine: AsyncEngine) -> None:
    one = layer(engine)
    where = ConversationRef("slack", "T1", PUBLIC_C, "400.4", "400.4", {"enterprise_id": "E1"})
    posted = await one.ask(where)
    surfaces = MemorySurfaces(MemorySurface())
    outbound = Outbound(one.store, {"slack": surfaces})

    record, message_id = await outbound.say(posted.request_id, "An agent will call you.")
    assert record == posted
    assert surfaces.opened == [where]  # the Grid org id came back from the store too
    [(posted_where, posted_id, message)] = surfaces.surface.posts
    assert (posted_where, posted_id) == (where, message_id)
    assert message == TextMessage("An agent will call you.", posted.request_id)

    with pytest.raises(UnknownRequest):
        await outbound.say("no-such-request", "hello")
    surfaces.surface.refuse_posts = 1
    with pytest.raises(Unreachable, match=posted.request_id):
        await outbound.say(posted.request_id, "hello")
    with pytest.raises(PlatformNotConfigured, match="teams is not configured"):
        await outbound.post_to(ConversationRef("teams", "t", "c"), TextMessage("hi"))
    refused = Outbound(one.store, {"slack": UnconfiguredPlatform("set SLACK_BOT_TOKEN")})
    with pytest.raises(PlatformNotConfigured, match="set SLACK_BOT_TOKEN"):
        await refused.say(posted.request_id, "hello")
