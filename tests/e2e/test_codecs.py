"""Every pairing of our codecs through the running server: a tone sent by A arrives at B at its frequency,
with nothing folded back or imaged by the resampling between 8, 16 and 48 kHz.

Each participant is the test RTP peer with PyAV's own encoder and decoder (FFmpeg `g722`, `libopus`), so the
server's codecs are checked against another implementation. Wideband senders add probe tones above what a
narrower receiver can carry: the receiver must hear them where it can and must not hear their aliases where it
cannot (decimation without an anti-aliasing filter would fold 5.5 kHz to 2.5 kHz at 8 kHz). Narrowband
senders heard by wideband receivers must not come with images (8000 - f, 8000 + f, ...) from upsampling.
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import numpy.typing as npt

from tests.helpers.audio import has_tone, lacks_tone, tone, tone_level_db
from tests.helpers.participant import Participant, conferencecall_of
from tests.helpers.peer_codecs import PEER_CODECS, PeerCodec
from tests.helpers.server_process import RunningServer

MAIN_TONES = (600.0, 1400.0)
WIDEBAND_PROBE = 5500.0
FULLBAND_PROBE = 9500.0


def probes(rate: int) -> list[float]:
    """The probe tones a sender at `rate` adds above narrowband."""
    return [p for p, needs in ((WIDEBAND_PROBE, 16000), (FULLBAND_PROBE, 48000)) if rate >= needs]


def signal(codec: PeerCodec, main: float, seconds: float = 10.0) -> npt.NDArray[np.int16]:
    """The main tone at 6000, and each probe the codec's rate allows at 3000, of amplitude."""
    samples = tone(main, seconds, rate=codec.rate, amplitude=6000.0).astype(np.int32)
    for probe in probes(codec.rate):
        samples += tone(probe, seconds, rate=codec.rate, amplitude=3000.0)
    return samples.astype(np.int16)


def alias(frequency: float, rate: int) -> float:
    """Where `frequency` lands when sampled at `rate` without filtering."""
    folded = frequency % rate
    return rate - folded if folded > rate / 2 else folded


def problems(sender: PeerCodec, main: float, receiver: PeerCodec, own: float,
             heard: npt.NDArray[np.int16]) -> list[str]:
    """What is wrong with what `receiver` heard of `sender` (empty when all is right)."""
    rate = receiver.rate
    found: list[str] = []

    def level(f: float) -> str:
        return f"{tone_level_db(heard, rate, f):.1f} dB"

    if not has_tone(heard, rate, main):
        found.append(f"{main:.0f} Hz from the sender missing ({level(main)})")
    if not lacks_tone(heard, rate, own):
        found.append(f"hears its own {own:.0f} Hz ({level(own)})")
    for probe in probes(sender.rate):
        if probe < 0.45 * rate:
            if not has_tone(heard, rate, probe):
                found.append(f"wideband probe {probe:.0f} Hz lost ({level(probe)})")
        elif not lacks_tone(heard, rate, alias(probe, rate)):
            found.append(f"probe {probe:.0f} Hz folded to {alias(probe, rate):.0f} Hz ({level(alias(probe, rate))})")
    for k in itertools.count(1):
        image_base = k * sender.rate
        if image_base - main >= rate / 2 or sender.rate >= rate:
            break
        for image in (image_base - main, image_base + main):
            if image < rate / 2 and not lacks_tone(heard, rate, image):
                found.append(f"image of {main:.0f} Hz at {image:.0f} Hz ({level(image)})")
    return found


def test_every_codec_pairing_carries_tones_at_the_right_frequency(server: RunningServer) -> None:
    names = ["PCMU", "PCMA", "G722", "opus"]
    pairs = list(itertools.combinations_with_replacement(names, 2))
    rooms = []
    try:
        for first, second in pairs:
            conference = server.api.create_conference(f"{first}+{second}")
            uri = server.direct_uri(conference["direct_hash"])
            a_codec, b_codec = PEER_CODECS[first], PEER_CODECS[second]
            a = Participant(server.sip, uri, MAIN_TONES[0], codec=a_codec, signal=signal(a_codec, MAIN_TONES[0]))
            b = Participant(server.sip, uri, MAIN_TONES[1], codec=b_codec, signal=signal(b_codec, MAIN_TONES[1]))
            rooms.append((conference, a, b))
        for conference, _, _ in rooms:
            server.api.wait_for(f"/conferences/{conference['id']}", lambda c: len(c["conferencecall_ids"]) == 2)
        time.sleep(3.0)
        end = time.monotonic()
        failures = {}
        for conference, a, b in rooms:
            heard_by_b = b.heard_between(end - 2.0, end)
            heard_by_a = a.heard_between(end - 2.0, end)
            found = [f"{b.codec.name} hearing {a.codec.name}: {p}"
                     for p in problems(a.codec, a.frequency, b.codec, b.frequency, heard_by_b)]
            found += [f"{a.codec.name} hearing {b.codec.name}: {p}"
                      for p in problems(b.codec, b.frequency, a.codec, a.frequency, heard_by_a)]
            rate = max(a.codec.rate, b.codec.rate)
            participants = [server.api.get(f"/conferencecalls/{cc}") for cc in
                            server.api.get(f"/conferences/{conference['id']}")["conferencecall_ids"]]
            rates = {p["media"]["mixing_rate"] for p in participants}
            if rates != {rate}:
                found.append(f"mixing at {rates}, expected {rate}")
            if found:
                failures[conference["name"]] = found
        assert not failures, failures
    finally:
        for _, a, b in rooms:
            a.close(hang_up=True)
            b.close(hang_up=True)


def test_the_mixing_rate_follows_who_is_in_the_conference(server: RunningServer) -> None:
    conference = server.api.create_conference("rates")
    uri = server.direct_uri(conference["direct_hash"])
    path = f"/conferences/{conference['id']}"

    def mixing_rates() -> set[int]:
        ids = server.api.get(path)["conferencecall_ids"]
        return {server.api.get(f"/conferencecalls/{cc}")["media"]["mixing_rate"] for cc in ids}

    narrow = Participant(server.sip, uri, 700.0, codec=PEER_CODECS["PCMU"])
    try:
        server.api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 1)
        assert mixing_rates() == {8000}
        wide = Participant(server.sip, uri, 1200.0, codec=PEER_CODECS["G722"])
        server.api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 2)
        assert mixing_rates() == {16000}
        full = Participant(server.sip, uri, 1700.0, codec=PEER_CODECS["opus"])
        server.api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 3)
        assert mixing_rates() == {48000}
        full.close(hang_up=True)
        server.api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 2)
        assert mixing_rates() == {16000}
        time.sleep(1.5)
        end = time.monotonic()
        heard = narrow.heard_between(end - 1.0, end)
        assert has_tone(heard, 8000, 1200.0), tone_level_db(heard, 8000, 1200.0)
        wide.close(hang_up=True)
        server.api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == 1)
        assert mixing_rates() == {8000}
    finally:
        narrow.close(hang_up=True)


def test_any_packet_time_is_received_and_20_ms_is_sent(server: RunningServer) -> None:
    conference = server.api.create_conference("ptimes")
    uri = server.direct_uri(conference["direct_hash"])
    path = f"/conferences/{conference['id']}"
    people = [Participant(server.sip, uri, frequency, codec=dataclasses.replace(PEER_CODECS[name], ptime=ptime))
              for name, ptime, frequency in (("PCMU", 30, 500.0), ("G722", 10, 900.0), ("opus", 60, 1300.0),
                                             ("PCMA", 40, 1700.0))]
    try:
        server.api.wait_for(path, lambda c: len(c["conferencecall_ids"]) == len(people))
        time.sleep(2.5)
        end = time.monotonic()
        for person in people:
            heard = person.heard_between(end - 1.5, end)
            for other in people:
                level = tone_level_db(heard, person.rate, other.frequency)
                if other is person:
                    assert lacks_tone(heard, person.rate, other.frequency), (person.codec, "hears itself", level)
                else:
                    assert has_tone(heard, person.rate, other.frequency), (person.codec, other.codec, level)
            sent = [r.packet for r in person.peer.received[-20:]]
            steps = {(b.timestamp - a.timestamp) % 2**32 for a, b in itertools.pairwise(sent)}
            assert steps == {person.codec.clock_rate // 50}, (person.codec.name, steps)
            media = conferencecall_of(server.api, person.sip)["media"]
            assert media["packets_lost"] == 0 and media["concealed_underruns"] <= 1, (person.codec.name, media)
    finally:
        for person in people:
            person.close(hang_up=True)
