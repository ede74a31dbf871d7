"""Participant controls over REST, heard by FFT: mute (not heard), deaf (hears nothing), hold (neither), gain in
and out in dB; each change is stored on the call and published as `call_updated`; talking is published too.

Three real callers stream tones into a server running as a library on a thread of its own (so its events can be
watched); what each of them hears is read off its RTP socket.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests.helpers.audio import has_tone, lacks_tone, tone, tone_level_db, tone_power_db
from tests.helpers.inprocess import InProcessServer, wait_until
from tests.helpers.participant import Participant, conferencecall_of

SETTLE = 0.35
"""Seconds for a change to reach the ears: the next tick, the jitter buffer and the packet on its way."""


def listen(person: Participant, seconds: float = 1.0) -> np.ndarray:
    """What `person` hears over the next `seconds`, once a change has had time to take effect."""
    time.sleep(SETTLE)
    start = time.monotonic()
    time.sleep(seconds)
    return person.heard_between(start, time.monotonic())


@pytest.fixture
def trio(inprocess_server: InProcessServer) -> Iterator[tuple[list[Participant], list[str], str]]:
    """Three callers (500, 900, 1300 Hz) in one conference: (callers, their call ids, conference id)."""
    api = inprocess_server.api
    conference = api.create_conference("controls")
    uri = inprocess_server.direct_uri(conference["direct_hash"])
    people = [Participant(inprocess_server.sip, uri, frequency, seconds=40) for frequency in (500.0, 900.0, 1300.0)]
    try:
        api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 3)
        yield people, [conferencecall_of(api, person.sip)["reference_id"] for person in people], conference["id"]
    finally:
        for person in people:
            person.close(hang_up=True)


def test_mute_deaf_and_hold_are_heard_and_published(inprocess_server: InProcessServer,
                                                    trio: tuple[list[Participant], list[str], str]) -> None:
    api = inprocess_server.api
    (a, b, c), (call_a, call_b, call_c), _ = trio
    assert has_tone(listen(b), 8000, 500.0)

    assert api.post(f"/calls/{call_a}/mute", {"direction": "in"})["mute_direction"] == "in"
    heard_by_b, heard_by_a = listen(b), a.heard_between(time.monotonic() - 1.0, time.monotonic())
    assert lacks_tone(heard_by_b, 8000, 500.0), tone_level_db(heard_by_b, 8000, 500.0)
    assert has_tone(heard_by_b, 8000, 1300.0)
    assert has_tone(heard_by_a, 8000, 900.0), "muted in: still hears the others"
    assert api.delete(f"/calls/{call_a}/mute")["mute_direction"] == ""
    assert has_tone(listen(b), 8000, 500.0)

    assert api.post(f"/calls/{call_b}/mute", {"direction": "out"})["mute_direction"] == "out"
    heard_by_b, heard_by_c = listen(b), c.heard_between(time.monotonic() - 1.0, time.monotonic())
    assert np.abs(heard_by_b.astype(np.int32)).max() <= 8, "deaf: silence, though packets keep coming"
    assert has_tone(heard_by_c, 8000, 900.0), "deaf is not mute: the others still hear it"
    assert api.post(f"/calls/{call_b}/mute", {"direction": "in"})["mute_direction"] == "both"
    assert lacks_tone(listen(c), 8000, 900.0)
    assert api.ok("DELETE", f"/calls/{call_b}/mute", {"direction": "out"})["mute_direction"] == "in"
    assert api.delete(f"/calls/{call_b}/mute")["mute_direction"] == ""

    assert api.post(f"/calls/{call_c}/hold")["hold"] is True
    heard_by_b, heard_by_c = listen(b), c.heard_between(time.monotonic() - 1.0, time.monotonic())
    assert lacks_tone(heard_by_b, 8000, 1300.0) and has_tone(heard_by_b, 8000, 500.0)
    assert np.abs(heard_by_c.astype(np.int32)).max() <= 8, "on hold: hears nothing either"
    assert api.delete(f"/calls/{call_c}/hold")["hold"] is False
    assert has_tone(listen(b), 8000, 1300.0) and has_tone(listen(c), 8000, 900.0)

    updates = [(event.data["id"], event.data["mute_direction"], event.data["hold"])
               for event in inprocess_server.events_of("call_updated")]
    assert updates == [(call_a, "in", False), (call_a, "", False), (call_b, "out", False), (call_b, "both", False),
                       (call_b, "in", False), (call_b, "", False), (call_c, "", True), (call_c, "", False)]
    leg = inprocess_server.call(lambda: inprocess_server.server.service.calls.media_statistics(call_b))
    assert leg["muted"] is False and leg["deaf"] is False and leg["held"] is False


def test_gains_change_levels_by_their_decibels(inprocess_server: InProcessServer,
                                               trio: tuple[list[Participant], list[str], str]) -> None:
    api = inprocess_server.api
    (a, b, _), (call_a, call_b, _), _ = trio
    before = listen(b)
    updated = api.post(f"/calls/{call_a}/gain", {"direction": "in", "gain": -12})
    assert (updated["gain_in"], updated["gain_out"]) == (-12.0, 0.0)
    after = listen(b)
    assert tone_power_db(after, 8000, 500.0) - tone_power_db(before, 8000, 500.0) == pytest.approx(-12.0, abs=1.0)
    assert tone_power_db(after, 8000, 1300.0) == pytest.approx(tone_power_db(before, 8000, 1300.0), abs=1.0)

    assert api.post(f"/calls/{call_b}/gain", {"direction": "out", "gain": 6.0})["gain_out"] == 6.0
    louder = listen(b)
    assert tone_power_db(louder, 8000, 1300.0) - tone_power_db(after, 8000, 1300.0) == pytest.approx(6.0, abs=1.0)
    heard_by_a = listen(a)
    assert tone_power_db(heard_by_a, 8000, 900.0) == pytest.approx(tone_power_db(before, 8000, 1300.0), abs=1.5), \
        "b's output gain changes what b hears, not how b is heard"
    reset = api.delete(f"/calls/{call_a}/gain")
    assert (reset["gain_in"], reset["gain_out"]) == (0.0, 0.0)
    restored = listen(b)
    assert tone_power_db(restored, 8000, 500.0) - tone_power_db(louder, 8000, 500.0) == pytest.approx(12.0, abs=1.0)


def test_bad_control_requests_get_clear_errors(inprocess_server: InProcessServer,
                                               trio: tuple[list[Participant], list[str], str]) -> None:
    api = inprocess_server.api
    _, (call_a, _, _), _ = trio
    for path, body, status, words in (
            (f"/calls/{call_a}/mute", {"direction": "sideways"}, 400, "direction"),
            (f"/calls/{call_a}/mute", {}, 400, "direction"),
            (f"/calls/{call_a}/gain", {"direction": "in"}, 400, "gain"),
            (f"/calls/{call_a}/gain", {"direction": "in", "gain": 100}, 400, "-40 to 20"),
            (f"/calls/{call_a}/gain", {"direction": "in", "gain": True}, 400, "gain"),
            ("/calls/not-a-uuid/mute", {"direction": "in"}, 400, "id"),
            ("/calls/5e4a0680-804e-11ec-8477-2fea59680000/hold", None, 404, "not found")):
        code, answer, raw = api.call("POST", path, body)
        assert code == status and words in answer["error"]["message"], (path, body, raw)
    assert api.get(f"/calls/{call_a}")["mute_direction"] == "", "a refused request changes nothing"


def test_talking_is_published_when_a_caller_speaks_and_falls_silent(inprocess_server: InProcessServer) -> None:
    api = inprocess_server.api
    conference = api.create_conference("talk")
    uri = inprocess_server.direct_uri(conference["direct_hash"])
    burst = np.concatenate([np.zeros(8000, np.int16), tone(700.0, 1.0, amplitude=8000.0),
                            np.zeros(3 * 8000, np.int16)])
    speaker = Participant(inprocess_server.sip, uri, 700.0, signal=burst)
    listener = Participant(inprocess_server.sip, uri, 0.0, signal=np.zeros(5 * 8000, np.int16))
    try:
        joined = api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 2)
        wait_until(lambda: inprocess_server.events_of("talking_stopped"), timeout=6)
        started, stopped = inprocess_server.events_of("talking_started"), inprocess_server.events_of("talking_stopped")
        speaker_cc = conferencecall_of(api, speaker.sip)["id"]
        assert [event.data["conferencecall_id"] for event in started] == [speaker_cc]
        assert [event.data["conferencecall_id"] for event in stopped] == [speaker_cc]
        assert started[0].data["conference_id"] == conference["id"] and speaker_cc in joined["conferencecall_ids"]
    finally:
        speaker.close(hang_up=True)
        listener.close(hang_up=True)
