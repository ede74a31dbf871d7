"""Bots: participants inside the server process, heard and hearing like phones, checked by FFT.

A real SIP caller (440 Hz) and bots (`Server.add_bot`) share conferences on a server running as a library on its
own thread; what the bots hear is collected on the server's loop, what the caller hears off its RTP socket.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pytest

from confbridge import Conflict, InvalidRequest, NotFound
from confbridge.bots import BotParticipant, PcmQueue, as_pcm16
from tests.helpers.audio import has_tone, lacks_tone, read_wav, tone, tone_level_db
from tests.helpers.inprocess import InProcessServer, wait_until
from tests.helpers.participant import Participant

T = TypeVar("T")
SETTLE = 0.4
"""Seconds for audio (or a change) to reach the ears: pacing, the tick, the jitter buffer, the way back."""


def on_loop(running: InProcessServer, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
    """Run a coroutine on the server's loop and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coroutine, running.loop).result(timeout)


async def tone_frames(frequency: float, seconds: float, rate: int, chunk_ms: int = 20,
                      floats: bool = False) -> AsyncIterator[npt.NDArray[Any]]:
    """A tone in chunks of `chunk_ms`, as fast as they are taken (the bot paces them), int16 or float."""
    samples = tone(frequency, seconds, rate=rate)
    step = rate * chunk_ms // 1000
    for start in range(0, samples.size, step):
        chunk = samples[start:start + step]
        yield chunk.astype(np.float32) / 32768.0 if floats else chunk


class Ears:
    """Collects, on the server's loop, every frame a bot hears with its arrival time; `done` when iteration ends."""

    def __init__(self, running: InProcessServer, bot: BotParticipant) -> None:
        self.frames: list[tuple[float, npt.NDArray[np.int16]]] = []
        self.done: Future[None] = asyncio.run_coroutine_threadsafe(self._collect(bot), running.loop)

    async def _collect(self, bot: BotParticipant) -> None:
        async for frame in bot:
            self.frames.append((time.monotonic(), frame))

    def heard_between(self, start: float, end: float) -> npt.NDArray[np.int16]:
        pieces = [frame for at, frame in list(self.frames) if start <= at < end]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)


def listen(source: Ears | Participant, seconds: float = 1.0) -> npt.NDArray[np.int16]:
    """What `source` hears over the next `seconds`, once a change has had time to take effect."""
    time.sleep(SETTLE)
    start = time.monotonic()
    time.sleep(seconds)
    return source.heard_between(start, time.monotonic())


@pytest.fixture
def room(inprocess_server: InProcessServer) -> Iterator[tuple[str, Participant]]:
    """A conference with a SIP caller streaming 440 Hz in it: (conference id, the caller)."""
    api = inprocess_server.api
    conference = api.create_conference("bots")
    caller = Participant(inprocess_server.sip, inprocess_server.direct_uri(conference["direct_hash"]), 440.0,
                         seconds=30)
    try:
        api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 1)
        yield conference["id"], caller
    finally:
        caller.close(hang_up=True)


def add_bot(running: InProcessServer, conference_id: str, frequency: float | None = None, **options: Any
            ) -> BotParticipant:
    """A bot in the conference, playing a 30 s tone of `frequency` (or nothing)."""
    rate = options.get("rate", 16000)
    audio = tone_frames(frequency, 30, rate) if frequency is not None else None
    return on_loop(running, running.server.add_bot(conference_id, audio, **options))


def test_a_bot_hears_the_others_but_not_itself_and_is_heard(inprocess_server: InProcessServer,
                                                            room: tuple[str, Participant]) -> None:
    api = inprocess_server.api
    conference_id, caller = room
    bot = add_bot(inprocess_server, conference_id, 1000.0, name="tone bot")
    ears = Ears(inprocess_server, bot)
    assert bot.rate == 16000

    heard = listen(ears, 1.5)
    assert heard.size >= 16000, "20 ms frames keep coming"
    assert {frame.size for _, frame in ears.frames} == {320}
    assert has_tone(heard, 16000, 440.0), tone_level_db(heard, 16000, 440.0)
    assert tone_level_db(heard, 16000, 1000.0) < -30, "the bot never hears itself"
    heard_by_caller = caller.heard_between(time.monotonic() - 1.0, time.monotonic())
    assert has_tone(heard_by_caller, 8000, 1000.0), tone_level_db(heard_by_caller, 8000, 1000.0)

    participant = api.wait_for(f"/conferencecalls/{bot.conferencecall_id}", lambda p: p["status"] == "joined")
    assert participant["reference_id"] == bot.call_id
    assert participant["media"]["codec"] == "G722/8000" and participant["media"]["packets_received"] > 50
    assert bot.conferencecall_id in api.get(f"/conferences/{conference_id}")["conferencecall_ids"]
    call = api.get(f"/calls/{bot.call_id}")
    assert (call["type"], call["status"], call["source"]["target_name"]) == ("bot", "progressing", "tone bot")
    assert bot.outgoing_dropped == 0 and bot.heard_dropped == 0


def test_kicking_a_bot_over_rest_ends_its_iteration(inprocess_server: InProcessServer,
                                                    room: tuple[str, Participant]) -> None:
    api = inprocess_server.api
    conference_id, _ = room
    bot = add_bot(inprocess_server, conference_id, 1000.0)
    ears = Ears(inprocess_server, bot)
    api.wait_for(f"/conferencecalls/{bot.conferencecall_id}", lambda p: p["status"] == "joined")

    api.delete(f"/conferencecalls/{bot.conferencecall_id}")
    ears.done.result(5)
    assert (bot.ended, bot.hangup_by, bot.end_reason) == (True, "local", "kicked")
    participant = api.wait_for(f"/conferencecalls/{bot.conferencecall_id}", lambda p: p["status"] == "leaved")
    assert participant["media"]["packets_received"] > 0, "final media figures kept"
    call = api.get(f"/calls/{bot.call_id}")
    assert (call["status"], call["hangup_by"], call["hangup_reason"]) == ("hangup", "local", "kicked")
    assert bot.conferencecall_id not in api.get(f"/conferences/{conference_id}")["conferencecall_ids"]
    bots = inprocess_server.server.bots
    assert bots is not None and not inprocess_server.call(lambda: bots.owns(bot.call_id))


def test_leave_marks_the_bot_leaved_with_its_reason(inprocess_server: InProcessServer,
                                                    room: tuple[str, Participant]) -> None:
    api = inprocess_server.api
    conference_id, caller = room
    bot = add_bot(inprocess_server, conference_id, 1000.0)
    api.wait_for(f"/conferencecalls/{bot.conferencecall_id}", lambda p: p["status"] == "joined")
    on_loop(inprocess_server, bot.leave())
    on_loop(inprocess_server, bot.leave())  # a second time changes nothing

    participant = api.get(f"/conferencecalls/{bot.conferencecall_id}")
    call = api.get(f"/calls/{bot.call_id}")
    assert participant["status"] == "leaved"
    assert (call["hangup_by"], call["hangup_reason"]) == ("remote", "bot left")
    assert lacks_tone(listen(caller), 8000, 1000.0), "gone from the mix"


def test_a_bot_whose_audio_ends_leaves_after_playing_it(inprocess_server: InProcessServer) -> None:
    """Float frames at 48 kHz (Opus), one longer than the bot's queue, are heard by an 8 kHz (PCMU) bot, none of
    them dropped; the player leaves at the end."""
    api = inprocess_server.api
    conference_id = api.create_conference("bot to bot")["id"]
    listener = add_bot(inprocess_server, conference_id, rate=8000)
    ears = Ears(inprocess_server, listener)
    player = on_loop(inprocess_server, inprocess_server.server.add_bot(
        conference_id, tone_frames(700.0, 2.0, 48000, chunk_ms=1500, floats=True), rate=48000))

    heard = listen(ears, 1.0)
    assert {frame.size for _, frame in ears.frames} == {160}
    assert has_tone(heard, 8000, 700.0), tone_level_db(heard, 8000, 700.0)
    wait_until(lambda: player.ended, timeout=5)
    assert (player.hangup_by, player.end_reason, player.outgoing_dropped) == ("remote", "bot left", 0)
    assert api.get(f"/calls/{player.call_id}")["source"]["type"] == "bot"
    assert lacks_tone(listen(ears, 0.5), 8000, 700.0)
    assert not listener.ended


def test_muting_a_bot_over_rest_silences_it(inprocess_server: InProcessServer,
                                            room: tuple[str, Participant]) -> None:
    api = inprocess_server.api
    conference_id, caller = room
    bot = add_bot(inprocess_server, conference_id, 1000.0)
    assert has_tone(listen(caller), 8000, 1000.0)

    assert api.post(f"/calls/{bot.call_id}/mute", {"direction": "in"})["mute_direction"] == "in"
    heard = listen(caller)
    assert lacks_tone(heard, 8000, 1000.0), tone_level_db(heard, 8000, 1000.0)
    assert api.delete(f"/calls/{bot.call_id}/mute")["mute_direction"] == ""
    assert has_tone(listen(caller), 8000, 1000.0)


def test_a_bot_is_recorded(inprocess_server: InProcessServer) -> None:
    api = inprocess_server.api
    conference_id = api.create_conference("recorded bot")["id"]
    api.post(f"/conferences/{conference_id}/recording_start")
    add_bot(inprocess_server, conference_id, 1000.0)
    time.sleep(1.5)
    conference = api.post(f"/conferences/{conference_id}/recording_stop")

    status, _, raw = api.call("GET", f"/recordingfiles/{conference['recording_ids'][-1]}")
    assert status == 200
    rate, samples = read_wav(raw)
    assert samples.size >= rate
    assert has_tone(samples[rate // 2:], rate, 1000.0), tone_level_db(samples[rate // 2:], rate, 1000.0)


def test_add_bot_refuses_unknown_ended_conferences_and_bad_rates(inprocess_server: InProcessServer) -> None:
    api = inprocess_server.api
    server = inprocess_server.server
    conference_id = api.create_conference("short lived")["id"]
    with pytest.raises(NotFound):
        on_loop(inprocess_server, server.add_bot(str(uuid.uuid4())))
    with pytest.raises(InvalidRequest):
        on_loop(inprocess_server, server.add_bot(conference_id, rate=22050))
    bot = add_bot(inprocess_server, conference_id)
    ears = Ears(inprocess_server, bot)

    api.delete(f"/conferences/{conference_id}")
    ears.done.result(5)
    assert (bot.hangup_by, bot.end_reason) == ("local", "conference terminated")
    api.wait_for(f"/conferences/{conference_id}", lambda c: c["status"] == "terminated")
    with pytest.raises(Conflict):
        on_loop(inprocess_server, server.add_bot(conference_id))


def test_pcm_queue_cuts_exact_frames_and_drops_the_oldest() -> None:
    queue = PcmQueue(capacity=100)
    queue.push(np.arange(30, dtype=np.int16))
    assert queue.pop(40) is None, "less than a frame waits for more"
    queue.push(np.arange(30, 60, dtype=np.int16))
    assert np.array_equal(queue.pop(40), np.arange(40))
    padded = queue.pop(40, partial=True)
    assert padded is not None and np.array_equal(padded, np.r_[np.arange(40, 60), np.zeros(20)])
    assert queue.pop(40, partial=True) is None

    for start in range(0, 150, 50):
        queue.push(np.arange(start, start + 50, dtype=np.int16))
    assert (queue.size, queue.dropped) == (100, 50)
    assert np.array_equal(queue.pop(100), np.arange(50, 150))


def test_as_pcm16_takes_int16_and_floats_only() -> None:
    assert np.array_equal(as_pcm16(np.array([[1], [-2]], dtype=np.int16)), [1, -2])
    assert np.array_equal(as_pcm16(np.array([0.5, -1.0, 2.0])), [16384, -32767, 32767])
    with pytest.raises(TypeError):
        as_pcm16(np.array([1, 2], dtype=np.int32))
