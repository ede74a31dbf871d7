"""Tests for confbridge/dtmf_menu.py: bindings, sequences typed across calls, the inter-digit timeout."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confbridge.dtmf_menu import DEFAULT_MENU, DtmfMenu, MenuAction, check_menu, parse_binding


def test_default_menu_toggles_mute_with_star_six() -> None:
    assert DEFAULT_MENU == {"*6": MenuAction.TOGGLE_MUTE}


@pytest.mark.parametrize(("text", "binding"), [
    ("*6=toggle_mute", ("*6", MenuAction.TOGGLE_MUTE)),
    (" #9 = LEAVE ", ("#9", MenuAction.LEAVE)),
    ("a1=mute", ("A1", MenuAction.MUTE)),
])
def test_parse_binding(text: str, binding: tuple[str, MenuAction]) -> None:
    assert parse_binding(text) == binding


@pytest.mark.parametrize("text", ["*6", "=mute", "*6=", "*6=explode", "x9=mute", "123456789=mute"])
def test_bad_bindings_say_why(text: str) -> None:
    with pytest.raises(ValueError, match="DTMF menu"):
        parse_binding(text)


@given(st.text(max_size=40))
def test_parse_binding_never_fails_otherwise(text: str) -> None:
    try:
        sequence, action = parse_binding(text)
    except ValueError:
        return
    assert parse_binding(f"{sequence}={action.value}") == (sequence, action)


def test_a_sequence_that_ends_another_is_refused() -> None:
    with pytest.raises(ValueError, match="could never be typed"):
        check_menu({"6": MenuAction.MUTE, "*6": MenuAction.TOGGLE_MUTE})
    with pytest.raises(ValueError):
        DtmfMenu({"6": MenuAction.MUTE, "*6": MenuAction.TOGGLE_MUTE})


def test_sequences_complete_per_call_and_clear() -> None:
    menu = DtmfMenu({"*6": MenuAction.TOGGLE_MUTE, "##": MenuAction.LEAVE})
    assert menu.press("a", "*", 0.0) is None
    assert menu.press("b", "6", 0.1) is None, "another call's key does not finish a's sequence"
    assert menu.press("a", "6", 0.2) is MenuAction.TOGGLE_MUTE
    assert menu.press("a", "6", 0.3) is None, "the sequence was consumed"
    assert [menu.press("a", d, 1.0 + i / 10) for i, d in enumerate("12*6")] == [None, None, None,
                                                                                  MenuAction.TOGGLE_MUTE]
    assert menu.press("b", "#", 2.0) is None and menu.press("b", "#", 2.1) is MenuAction.LEAVE


def test_a_pause_longer_than_the_timeout_breaks_a_sequence() -> None:
    menu = DtmfMenu(DEFAULT_MENU, timeout=3.0)
    assert menu.press("a", "*", 0.0) is None
    assert menu.press("a", "6", 3.5) is None
    assert menu.press("a", "*", 4.0) is None and menu.press("a", "6", 6.9) is MenuAction.TOGGLE_MUTE


def test_an_empty_menu_does_nothing_and_forget_clears_a_call() -> None:
    assert DtmfMenu({}).press("a", "*", 0.0) is None
    menu = DtmfMenu(DEFAULT_MENU)
    menu.press("a", "*", 0.0)
    menu.forget("a")
    assert menu.press("a", "6", 0.1) is None
