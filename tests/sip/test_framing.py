"""Tests for sip/framing.py: Content-Length framing of SIP streams, CRLF keep-alives and framing errors."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.framing import PING, PONG, Framed, FramedMessage, FramingError, KeepAlive, StreamFramer
from sip.message import Request, parse_message

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HEAD = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-1\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: c1@192.0.2.1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Max-Forwards: 70\r\n"
)


def message(body: bytes = b"", *, length: bytes | None = None, name: bytes = b"Content-Length") -> bytes:
    """A complete OPTIONS request with `body`, declaring `length` (the body's true length by default)."""
    declared = str(len(body)).encode() if length is None else length
    return HEAD + name + b": " + declared + b"\r\n\r\n" + body


def feed_chunks(chunks: list[bytes], framer: StreamFramer | None = None) -> list[Framed]:
    """Everything a fresh (or the given) framer returns for `chunks` fed one after the other."""
    framer = framer or StreamFramer()
    results: list[Framed] = []
    for chunk in chunks:
        results.extend(framer.feed(chunk))
    return results


def split_at(data: bytes, points: list[int]) -> list[bytes]:
    """`data` cut at the given sorted offsets."""
    bounds = [0, *points, len(data)]
    return [data[start:stop] for start, stop in itertools.pairwise(bounds)]


FIRST = message(b"v=0\r\n")
SECOND = message(b"one\r\n\r\ntwo")
THIRD = message(name=b"l")
# A pong, a ping and a pong in a row are four CRLFs: on the wire that is two pings.
STREAM = PONG + FIRST + PING + SECOND + PONG + PING + PONG + THIRD + PONG + PING + PONG
STREAM_RESULTS: list[Framed] = [
    FramedMessage(FIRST), KeepAlive(), FramedMessage(SECOND), KeepAlive(), KeepAlive(), FramedMessage(THIRD),
    KeepAlive(), KeepAlive(),
]

# -- messages -----------------------------------------------------------------------------------------


def test_one_message_is_framed_whole() -> None:
    framer = StreamFramer()
    assert framer.feed(FIRST) == [FramedMessage(FIRST)]
    assert framer.buffered == 0
    assert not framer.broken


def test_framed_message_parses_with_its_body() -> None:
    [framed] = StreamFramer().feed(message(b"hello"))
    assert isinstance(framed, FramedMessage)
    parsed = parse_message(framed.data)
    assert isinstance(parsed, Request)
    assert parsed.body == b"hello"


def test_pipelined_messages_come_out_in_order() -> None:
    assert StreamFramer().feed(FIRST + SECOND + THIRD) == [
        FramedMessage(FIRST), FramedMessage(SECOND), FramedMessage(THIRD),
    ]


def test_body_containing_a_blank_line_is_taken_by_content_length() -> None:
    assert StreamFramer().feed(SECOND + FIRST) == [FramedMessage(SECOND), FramedMessage(FIRST)]


def test_partial_reads_accumulate() -> None:
    framer = StreamFramer()
    assert framer.feed(FIRST[:10]) == []
    assert framer.buffered == 10
    assert framer.feed(FIRST[10:-1]) == []
    assert framer.buffered == len(FIRST) - 1
    assert framer.feed(FIRST[-1:] + SECOND[:3]) == [FramedMessage(FIRST)]
    assert framer.buffered == 3


def test_compact_and_lower_case_content_length_names() -> None:
    lower = message(b"abc", name=b"content-length")
    compact = message(b"abcd", name=b"L")
    assert StreamFramer().feed(lower + compact) == [FramedMessage(lower), FramedMessage(compact)]


def test_folded_content_length_value_is_read() -> None:
    folded = HEAD + b"Content-Length:\r\n 2\r\n\r\nokX"
    assert StreamFramer().feed(folded) == [FramedMessage(folded[:-1])]


def test_repeated_equal_content_length_is_accepted() -> None:
    data = HEAD + b"Content-Length: 2\r\nl: 02\r\n\r\nok"
    assert StreamFramer().feed(data) == [FramedMessage(data)]


def test_bare_lf_header_terminator_is_accepted() -> None:
    data = b"OPTIONS sip:b@example.com SIP/2.0\nContent-Length: 3\n\nabc"
    assert StreamFramer().feed(data + data) == [FramedMessage(data), FramedMessage(data)]


def test_the_first_complete_terminator_ends_the_header_section() -> None:
    data = b"OPTIONS sip:b@example.com SIP/2.0\nContent-Length: 4\n\n\r\n\r\n"
    assert StreamFramer().feed(data) == [FramedMessage(data)]


def test_body_up_to_the_cap_is_accepted() -> None:
    data = message(b"x" * 5)
    assert StreamFramer(max_body_bytes=5).feed(data) == [FramedMessage(data)]


# -- keep-alives ----------------------------------------------------------------------------------------


def test_double_crlf_ping_is_a_keep_alive() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == [KeepAlive()]
    assert framer.buffered == 0


def test_single_crlf_gives_nothing_and_is_skipped_before_a_message() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []
    assert framer.feed(FIRST) == [FramedMessage(FIRST)]
    assert framer.buffered == 0


def test_ping_split_across_reads_is_one_keep_alive() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []
    assert framer.feed(b"\r") == []
    assert framer.feed(b"\n") == [KeepAlive()]


def test_pings_and_pongs_between_messages() -> None:
    assert StreamFramer().feed(PING + PING + PONG + FIRST + PONG + PONG + PONG) == [
        KeepAlive(), KeepAlive(), FramedMessage(FIRST), KeepAlive(),
    ]


# -- chunking ---------------------------------------------------------------------------------------------


def test_stream_fed_whole() -> None:
    assert feed_chunks([STREAM]) == STREAM_RESULTS


def test_stream_split_in_two_at_every_offset_gives_the_same_results() -> None:
    for point in range(len(STREAM) + 1):
        assert feed_chunks([STREAM[:point], STREAM[point:]]) == STREAM_RESULTS, point


def test_stream_fed_one_byte_at_a_time_gives_the_same_results() -> None:
    framer = StreamFramer()
    assert feed_chunks([STREAM[i : i + 1] for i in range(len(STREAM))], framer) == STREAM_RESULTS
    assert framer.buffered == 0


# -- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason", "status"),
    [
        (HEAD + b"\r\n", "Missing Content-Length header", 400),
        (HEAD + b"Content-Length: ten\r\n\r\n", "Malformed Content-Length header", 400),
        (HEAD + b"Content-Length: \xd9\xa5\r\n\r\n", "Malformed Content-Length header", 400),
        (HEAD + b"Content-Length: 1 2\r\n\r\n", "Malformed Content-Length header", 400),
        (HEAD + b"Content-Length:\r\n\r\n", "Malformed Content-Length header", 400),
        (HEAD + b"Content-Length: -5\r\n\r\n", "Negative Content-Length", 400),
        (HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n", "Conflicting Content-Length headers", 400),
        (HEAD + b"Content-Length: 2\r\nl: 3\r\n\r\n", "Conflicting Content-Length headers", 400),
        (HEAD + b"Content-Length: 65537\r\n\r\n", "Body longer than 65536 bytes", 513),
        (HEAD + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n", "Body longer than 65536 bytes", 513),
    ],
)
def test_content_length_errors_carry_status_and_head(data: bytes, reason: str, status: int) -> None:
    framer = StreamFramer()
    assert framer.feed(data + b"body") == [FramingError(reason, status, data)]
    assert framer.broken


def test_header_section_over_the_cap_without_blank_line_is_513() -> None:
    framer = StreamFramer(max_header_bytes=100)
    assert framer.feed(HEAD[:103]) == []
    assert framer.feed(HEAD[103:104]) == [FramingError("Header section longer than 100 bytes", 513, b"")]
    assert framer.broken
    assert framer.buffered == 0


def test_header_section_over_the_cap_read_at_once_is_513() -> None:
    data = message()
    cap = data.index(b"\r\n\r\n") - 1
    assert StreamFramer(max_header_bytes=cap).feed(data) == [
        FramingError(f"Header section longer than {cap} bytes", 513, b""),
    ]
    assert StreamFramer(max_header_bytes=cap + 1).feed(data) == [FramedMessage(data)]


def test_messages_before_an_error_are_still_returned() -> None:
    bad = HEAD + b"\r\n"
    assert StreamFramer().feed(FIRST + PING + bad) == [
        FramedMessage(FIRST), KeepAlive(), FramingError("Missing Content-Length header", 400, bad),
    ]


def test_broken_framer_ignores_further_input() -> None:
    framer = StreamFramer()
    assert len(framer.feed(HEAD + b"\r\n")) == 1
    assert framer.feed(FIRST) == []
    assert framer.feed(PING) == []
    assert framer.broken
    assert framer.buffered == 0


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        StreamFramer(max_header_bytes=0)
    with pytest.raises(ValueError):
        StreamFramer(max_body_bytes=-1)


# -- properties ---------------------------------------------------------------------------------------------

bodies = st.binary(max_size=40) | st.lists(st.sampled_from([b"\r\n", b"\r\n\r\n", b"\n\n", b"x"]), max_size=6).map(
    b"".join
)
length_names = st.sampled_from([b"Content-Length", b"content-length", b"l", b"L", b"CONTENT-LENGTH"])
# The number of CRLFs sent before each message: every pair is a ping, an odd one out a pong.
separators = st.integers(min_value=0, max_value=5)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[Framed]]:
    """A stream of messages separated by pings and pongs, with the results framing it must give."""
    data = b""
    expected: list[Framed] = []
    for body, name, crlfs in draw(st.lists(st.tuples(bodies, length_names, separators), max_size=4)):
        data += PONG * crlfs
        expected += [KeepAlive()] * (crlfs // 2)
        framed = message(body, name=name)
        data += framed
        expected.append(FramedMessage(framed))
    trailing = draw(separators)
    return data + PONG * trailing, expected + [KeepAlive()] * (trailing // 2)


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """`data` cut at random offsets."""
    points = draw(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=12))
    return split_at(data, sorted(points))


@SETTINGS
@given(streams(), st.data())
def test_any_chunking_of_valid_messages_reproduces_them(
    stream: tuple[bytes, list[Framed]], data: st.DataObject
) -> None:
    raw, expected = stream
    assert feed_chunks(data.draw(chunkings(raw))) == expected


fuzz_bytes = st.lists(
    st.sampled_from([b"\r\n", b"\r", b"\n", b"\n\n", PING, b"l: 3", b"Content-Length: 1", b"x: -2", b":", b" ", b"A"]),
    max_size=30,
).map(b"".join) | st.binary(max_size=120)


@SETTINGS
@given(fuzz_bytes, st.data())
def test_arbitrary_bytes_never_raise_and_do_not_depend_on_chunking(raw: bytes, data: st.DataObject) -> None:
    whole = feed_chunks([raw], StreamFramer(max_header_bytes=40, max_body_bytes=8))
    chunked = feed_chunks(data.draw(chunkings(raw)), StreamFramer(max_header_bytes=40, max_body_bytes=8))
    assert chunked == whole
    assert all(isinstance(result, FramedMessage | KeepAlive | FramingError) for result in whole)
    assert all(not isinstance(result, FramingError) for result in whole[:-1])
