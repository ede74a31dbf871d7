"""The sans-IO timeout and health-check core, in fake time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confbridge.supervision import Supervisor


def test_nothing_watched_means_no_timer() -> None:
    supervisor = Supervisor(5.0)
    assert supervisor.get_timer() is None
    assert supervisor.handle_timer(1e9).expired == [] and supervisor.handle_timer(1e9).checks == []


def test_a_conference_expires_once_at_its_deadline_and_a_new_deadline_replaces_the_old() -> None:
    supervisor = Supervisor(5.0)
    supervisor.watch_conference("c", 100.0)
    supervisor.watch_conference("c", 60.0)
    assert supervisor.get_timer() == 60.0
    assert supervisor.handle_timer(59.9).expired == []
    assert supervisor.handle_timer(60.0).expired == ["c"]
    assert supervisor.handle_timer(100.0).expired == [], "the replaced deadline is gone"
    assert supervisor.get_timer() is None


def test_an_unwatched_conference_never_expires() -> None:
    supervisor = Supervisor(5.0)
    supervisor.watch_conference("c", 10.0)
    supervisor.unwatch_conference("c")
    assert supervisor.get_timer() is None and supervisor.handle_timer(20.0).expired == []


def test_checks_come_every_interval_from_when_the_participant_was_watched() -> None:
    supervisor = Supervisor(5.0)
    supervisor.watch_participant("p", 1.0)
    assert supervisor.get_timer() == 6.0
    assert supervisor.handle_timer(5.9).checks == []
    assert supervisor.handle_timer(6.0).checks == ["p"]
    assert supervisor.get_timer() == 11.0
    assert supervisor.handle_timer(11.5).checks == ["p"]
    assert supervisor.get_timer() == 16.0, "a late wake-up keeps the rhythm"


def test_a_wake_up_far_behind_runs_one_check_not_the_missed_ones() -> None:
    supervisor = Supervisor(5.0)
    supervisor.watch_participant("p", 0.0)
    assert supervisor.handle_timer(60.0).checks == ["p"]
    assert supervisor.get_timer() == 65.0


def test_three_failures_in_a_row_kick_and_a_pass_resets_the_count() -> None:
    supervisor = Supervisor(5.0)
    supervisor.watch_participant("p", 0.0)
    results = []
    for now, healthy in [(5, False), (10, False), (15, True), (20, False), (25, False)]:
        assert supervisor.handle_timer(now).checks == ["p"]
        results.append(supervisor.report("p", healthy))
    assert results == [False] * 5 and supervisor.failures("p") == 2
    assert supervisor.handle_timer(30).checks == ["p"]
    assert supervisor.report("p", False) is True
    assert supervisor.watched_participants == 0 and supervisor.get_timer() is None, "a kicked participant is dropped"


def test_an_unwatched_participant_is_not_checked_and_its_reports_are_ignored() -> None:
    supervisor = Supervisor(5.0)
    supervisor.watch_participant("p", 0.0)
    supervisor.watch_participant("q", 1.0)
    supervisor.unwatch_participant("p")
    assert supervisor.get_timer() == 6.0
    assert supervisor.handle_timer(100.0).checks == ["q"]
    assert supervisor.report("p", False) is False


def test_a_burst_of_due_checks_is_handed_out_in_batches() -> None:
    supervisor = Supervisor(5.0, checks_per_call=50)
    for index in range(120):
        supervisor.watch_participant(f"p{index}", 0.0)
    supervisor.watch_conference("c", 5.0)
    batches = []
    while (when := supervisor.get_timer()) is not None and when <= 5.0:
        due = supervisor.handle_timer(5.0)
        batches.append((len(due.checks), due.expired))
    assert [size for size, _ in batches] == [50, 50, 20]
    assert [key for _, expired in batches for key in expired] == ["c"]
    assert supervisor.get_timer() == 10.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Supervisor(0.0)
    with pytest.raises(ValueError):
        Supervisor(5.0, failures_to_kick=0)
    with pytest.raises(ValueError):
        Supervisor(5.0, checks_per_call=0)


@given(st.lists(st.tuples(st.sampled_from(["watch", "unwatch", "conference", "drop", "tick"]),
                          st.integers(0, 5), st.floats(0, 50)), max_size=60))
def test_timer_is_always_the_earliest_live_deadline(operations: list[tuple[str, int, float]]) -> None:
    supervisor = Supervisor(5.0)
    now = 0.0
    participants: dict[str, float] = {}
    conferences: dict[str, float] = {}
    for operation, index, value in operations:
        key = f"id{index}"
        if operation == "watch":
            supervisor.watch_participant(key, now)
            participants.setdefault(key, now + 5.0)
        elif operation == "unwatch":
            supervisor.unwatch_participant(key)
            participants.pop(key, None)
        elif operation == "conference":
            supervisor.watch_conference(key, now + value)
            conferences[key] = now + value
        elif operation == "drop":
            supervisor.unwatch_conference(key)
            conferences.pop(key, None)
        else:
            now += value
            due = supervisor.handle_timer(now)
            assert sorted(due.expired) == sorted(k for k, when in conferences.items() if when <= now)
            assert sorted(due.checks) == sorted(k for k, when in participants.items() if when <= now)
            conferences = {k: when for k, when in conferences.items() if when > now}
            participants = {k: (when + 5.0 if when + 5.0 > now else now + 5.0) if when <= now else when
                            for k, when in participants.items()}
        expected = min([*participants.values(), *conferences.values()], default=None)
        assert supervisor.get_timer() == expected
