"""Tests for sip/grammar.py: Params, quote-aware scanners, quoting, %HH unescaping and host validation."""

from __future__ import annotations

import pytest

from sip.grammar import (
    Params,
    check_quotes_balanced,
    find_unquoted,
    is_token,
    quote,
    split_unquoted,
    unescape,
    unquote,
    valid_host,
)

# -- Params -----------------------------------------------------------------------------------------


def test_params_parse_values_and_flags_in_order() -> None:
    params = Params.parse(";transport=tcp;lr;maddr=239.255.255.1")
    assert params.items() == [("transport", "tcp"), ("lr", None), ("maddr", "239.255.255.1")]
    assert len(params) == 3


def test_params_parse_leading_semicolon_is_optional() -> None:
    assert Params.parse("a=b;c").items() == [("a", "b"), ("c", None)]
    assert Params.parse(";a=b;c") == Params.parse("a=b;c")


def test_params_parse_empty_text_gives_no_params() -> None:
    assert Params.parse("").items() == []
    assert Params.parse(";").items() == []
    assert Params.parse("   ").items() == []


def test_params_parse_strips_whitespace_around_names_and_values() -> None:
    assert Params.parse(" ; branch = z9hG4bK1 ; rport ").items() == [("branch", "z9hG4bK1"), ("rport", None)]


def test_params_parse_keeps_quoted_value_with_semicolon_whole() -> None:
    params = Params.parse(';text="a;b";x=1')
    assert params.items() == [("text", '"a;b"'), ("x", "1")]


@pytest.mark.parametrize("text", [";;", ";=b", ";a=", ";a b=c", ';a="unterminated', ';a="', ";a;;b", ";a@b=1"])
def test_params_parse_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        Params.parse(text)


def test_params_str_round_trip_keeps_case_and_order() -> None:
    text = ";Transport=TCP;lr;Branch=z9hG4bKAbC;x=\"Q;v\""
    params = Params.parse(text)
    assert str(params) == text
    assert Params.parse(str(params)) == params


def test_params_get_is_case_insensitive_values_keep_case() -> None:
    params = Params.parse(";Tag=AbCd;LR")
    assert params.get("tag") == "AbCd"
    assert params.get("TAG") == "AbCd"
    assert params.get("lr") is None
    assert "lr" in params
    assert "Lr" in params
    assert "missing" not in params
    assert params.get("missing") is None
    assert params.get("missing", "dflt") == "dflt"
    assert 3 not in params


def test_params_get_returns_first_of_duplicates() -> None:
    assert Params.parse(";a=1;A=2").get("a") == "1"


def test_params_set_replaces_in_place_keeping_original_name() -> None:
    params = Params.parse(";Tag=1;lr;x=y")
    params.set("TAG", "2")
    assert params.items() == [("Tag", "2"), ("lr", None), ("x", "y")]
    assert str(params) == ";Tag=2;lr;x=y"


def test_params_set_appends_new_and_flag() -> None:
    params = Params.parse(";a=1")
    params.set("rport", None)
    params.set("received", "192.0.2.1")
    assert str(params) == ";a=1;rport;received=192.0.2.1"


def test_params_remove_drops_all_case_insensitively() -> None:
    params = Params.parse(";a=1;b=2;A=3;c")
    params.remove("a")
    assert params.items() == [("b", "2"), ("c", None)]
    params.remove("nothing")
    assert params.items() == [("b", "2"), ("c", None)]


def test_params_copy_is_independent() -> None:
    params = Params.parse(";a=1")
    clone = params.copy()
    clone.set("a", "2")
    clone.set("b", None)
    assert params.items() == [("a", "1")]
    assert clone.items() == [("a", "2"), ("b", None)]


def test_params_equality_ignores_name_case_not_value_case() -> None:
    assert Params.parse(";A=x;b") == Params.parse(";a=x;B")
    assert Params.parse(";a=x") != Params.parse(";a=X")
    assert Params.parse(";a;b") != Params.parse(";b;a")
    assert Params.parse(";a") != "a"


# -- split_unquoted / find_unquoted -----------------------------------------------------------------


def test_split_unquoted_plain() -> None:
    assert split_unquoted("a,b,,c", ",") == ["a", "b", "", "c"]
    assert split_unquoted("", ",") == [""]
    assert split_unquoted("abc", ",") == ["abc"]


def test_split_unquoted_ignores_separators_in_quotes_and_brackets() -> None:
    text = '"Doe, John" <sip:j@x;a=1,2>, <sip:k@y>;q="0,5", z'
    assert split_unquoted(text, ",") == ['"Doe, John" <sip:j@x;a=1,2>', " <sip:k@y>;q=\"0,5\"", " z"]


def test_split_unquoted_handles_escaped_quote_in_quoted_string() -> None:
    text = r'"a\",b",c'
    assert split_unquoted(text, ",") == [r'"a\",b"', "c"]


def test_split_unquoted_semicolons_inside_angle_brackets() -> None:
    assert split_unquoted("<sip:a@b;lr>;tag=1;x", ";") == ["<sip:a@b;lr>", "tag=1", "x"]


def test_find_unquoted() -> None:
    assert find_unquoted('"a;b";c', ";") == 5
    assert find_unquoted("<sip:x;lr>;tag=1", ";") == 10
    assert find_unquoted('"<" <sip:a@b>', "<") == 4
    assert find_unquoted("a;b;c", ";", 2) == 3
    assert find_unquoted('"a;b"', ";") == -1
    assert find_unquoted("<a;b>", ";") == -1
    assert find_unquoted("", ";") == -1


def test_unbalanced_closing_bracket_does_not_hide_separator() -> None:
    assert split_unquoted("a>,b", ",") == ["a>", "b"]


# -- quote / unquote --------------------------------------------------------------------------------


def test_quote_escapes_backslash_and_quote() -> None:
    assert quote('say "hi" \\ bye') == r'"say \"hi\" \\ bye"'
    assert quote("") == '""'


def test_unquote_undoes_quoted_pairs() -> None:
    assert unquote(r'"a\"b\\c"') == 'a"b\\c'
    assert unquote('  "spaced"  ') == "spaced"
    assert unquote('""') == ""


def test_unquote_plain_text_comes_back_stripped() -> None:
    assert unquote("  plain text ") == "plain text"
    assert unquote('"') == '"'


@pytest.mark.parametrize("text", ["", "plain", 'with "quotes"', "back\\slash", '\\"', "trailing\\", "ünïcode ☃"])
def test_quote_unquote_round_trip(text: str) -> None:
    assert unquote(quote(text)) == text


def test_check_quotes_balanced() -> None:
    assert check_quotes_balanced('"a" "b"')
    assert check_quotes_balanced(r'"a\"b"')
    assert not check_quotes_balanced('"a')
    assert not check_quotes_balanced(r'"a\"')


# -- tokens -----------------------------------------------------------------------------------------


def test_is_token() -> None:
    assert is_token("INVITE")
    assert is_token("z9hG4bK-.!%*_+`'~")
    assert not is_token("")
    assert not is_token("a b")
    assert not is_token("a:b")
    assert not is_token('a"')


# -- unescape ---------------------------------------------------------------------------------------


def test_unescape_decodes_exactly_once() -> None:
    assert unescape("v%61lue%25%34%31") == "value%41"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("", ""),
        ("%", "%"),
        ("a%", "a%"),
        ("%4", "%4"),
        ("a%4", "a%4"),
        ("%zz", "%zz"),
        ("%4g", "%4g"),
        ("%g4", "%g4"),
        ("%%41", "%A"),
        ("%41", "A"),
        ("x%2f%2F", "x//"),
        ("%00rest", "\x00rest"),
        ("a%00", "a\x00"),
        ("%C3%A9", "é"),
    ],
)
def test_unescape_cases(text: str, expected: str) -> None:
    assert unescape(text) == expected


def test_unescape_invalid_utf8_is_kept_reversibly() -> None:
    decoded = unescape("%FF")
    assert decoded.encode("utf-8", "surrogateescape") == b"\xff"


# -- valid_host -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "example.com.",
        "a",
        "a-b.example",
        "sub.do-main.example.org",
        "EXAMPLE.COM",
        "192.0.2.1",
        "0.0.0.0",
        "255.255.255.255",
        "[2001:db8::10]",
        "[::1]",
        "[::ffff:192.0.2.1]",
        "[2001:DB8:0:0:0:0:0:1]",
    ],
)
def test_valid_host_accepts(host: str) -> None:
    assert valid_host(host) is True


@pytest.mark.parametrize(
    "host",
    [
        "256.1.1.1",
        "1.2.3.999",
        "exa mple",
        "[::g]",
        "[1.2.3.4]",
        "[::1",
        "::1",
        "",
        "-example.com",
        "example-.com",
        "exa_mple.com",
        "a..b",
        "1.2.3",
        "12345",
    ],
)
def test_valid_host_rejects(host: str) -> None:
    assert valid_host(host) is False


@pytest.mark.parametrize("host", ["example.com\n", "192.0.2.1\n"])
def test_valid_host_rejects_trailing_newline(host: str) -> None:
    assert valid_host(host) is False
