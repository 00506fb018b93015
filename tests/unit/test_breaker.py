import pytest

from core.answering.breaker import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, cooldown_s=30.0, clock=clock)


def _trip(breaker: CircuitBreaker, times: int = 3) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_failure()


def test_starts_closed_and_allows(breaker: CircuitBreaker) -> None:
    assert breaker.state == "closed"
    assert breaker.allow()


def test_opens_after_threshold_consecutive_failures(breaker: CircuitBreaker) -> None:
    _trip(breaker, 2)
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"


def test_success_resets_the_consecutive_count(breaker: CircuitBreaker) -> None:
    _trip(breaker, 2)
    breaker.record_success()
    _trip(breaker, 2)
    assert breaker.state == "closed"
    assert breaker.snapshot()["consecutive_failures"] == 2


def test_skips_calls_while_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    _trip(breaker)
    assert not breaker.allow()
    clock.advance(29.9)
    assert not breaker.allow()
    assert breaker.state == "open"


def test_half_open_lets_exactly_one_trial(breaker: CircuitBreaker, clock: FakeClock) -> None:
    _trip(breaker)
    clock.advance(30.0)
    assert breaker.state == "half_open"
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # concurrent callers refused while it is in flight
    assert not breaker.allow()
    assert breaker.state == "half_open"


def test_trial_success_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    _trip(breaker)
    clock.advance(31)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.allow() and breaker.allow()
    assert breaker.snapshot() == {
        "state": "closed",
        "consecutive_failures": 0,
        "opened_at": None,
        "retry_in_s": None,
    }


def test_trial_failure_reopens_for_another_cooldown(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _trip(breaker)
    clock.advance(30)
    assert breaker.allow()
    breaker.record_failure()  # a single failure is enough in half-open
    assert breaker.state == "open"
    assert not breaker.allow()
    clock.advance(29)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_late_failure_while_open_does_not_extend_cooldown(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _trip(breaker)
    clock.advance(20)
    breaker.record_failure()  # from a call that started before the breaker opened
    clock.advance(10)
    assert breaker.allow()


def test_abandoned_trial_is_replaced_after_a_cooldown(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _trip(breaker)
    clock.advance(30)
    assert breaker.allow()  # trial claimed, caller never reports back
    clock.advance(29)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_snapshot_while_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    _trip(breaker)
    clock.advance(12.5)
    assert breaker.snapshot() == {
        "state": "open",
        "consecutive_failures": 3,
        "opened_at": 1000.0,
        "retry_in_s": 17.5,
    }
    clock.advance(20)
    snap = breaker.snapshot()
    assert snap["state"] == "half_open"
    assert snap["retry_in_s"] is None
    assert snap["opened_at"] == 1000.0


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(cooldown_s=-1)


def test_retry_after_holds_calls_off_for_at_most_a_cooldown(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    breaker.hold_off(5)
    assert not breaker.allow()
    assert breaker.snapshot()["consecutive_failures"] == 0  # a rate limit is no failure
    assert breaker.held_off
    clock.advance(5)
    assert breaker.allow()  # the one trial call
    breaker.record_success()
    breaker.hold_off(600)  # longer than the cooldown: capped
    clock.advance(30)
    assert breaker.state == "half_open"


def test_retry_after_never_extends_an_open_breaker(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _trip(breaker)
    clock.advance(29)
    breaker.hold_off(20)
    clock.advance(1)
    assert breaker.state == "half_open"
