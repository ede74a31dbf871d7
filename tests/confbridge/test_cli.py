"""The command line: `confbridge serve` and `python -m confbridge serve`, token handling, restarts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from confbridge.cli import build_parser, config_from_args, main
from confbridge.config import parse_port_range
from confbridge.dtmf_menu import MenuAction
from confbridge.negotiation import SrtpPolicy
from tests.helpers.rest import ApiClient
from tests.helpers.server_process import start_server


def test_defaults_are_the_embedded_loopback_ones() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.bind, args.public_address, args.sip_port, args.http_port) == ("127.0.0.1", None, 5060, 8088)
    assert args.rtp_ports == (20000, 20999) and args.data_dir == Path("confbridge-data") and args.token == []
    config = config_from_args(args)
    assert config.token is None and config.tokens == {} and config.webhooks == {} and config.health_interval == 5.0


def test_tokens_of_several_customers_and_webhooks() -> None:
    first, second = "5e4a0680-804e-11ec-8477-2fea5968d85b", "6f5b1791-915f-42fd-9588-3feb6a79e96c"
    args = build_parser().parse_args(["serve", "--token", "mine", "--token", f"t1={first}", "--token", f"t2={second}",
                                      "--webhook", f"{first}=http://127.0.0.1:9/hook?x=1",
                                      "--webhook-secret", f"{first}=s3cret"])
    config = config_from_args(args)
    assert config.token == "mine"
    assert config.tokens == {"t1": first, "t2": second}
    assert config.webhooks == {first: "http://127.0.0.1:9/hook?x=1"} and config.webhook_secrets == {first: "s3cret"}


@pytest.mark.parametrize("argv", [["--token", "t=not-a-uuid"], ["--webhook", "nope=http://x"],
                                  ["--webhook", "5e4a0680-804e-11ec-8477-2fea5968d85b=ftp://x"]])
def test_bad_customer_options_are_refused(argv: list[str]) -> None:
    try:
        code = main(["serve", "--data-dir", "/nonexistent/never-used", *argv])
    except SystemExit as exit:
        code = int(exit.code or 0)
    assert code == 2


def test_media_options() -> None:
    defaults = config_from_args(build_parser().parse_args(["serve"]))
    assert (defaults.srtp, defaults.rtp_timeout, defaults.recording_rate) == (SrtpPolicy.OPTIONAL, 30.0, 16000)
    assert defaults.dtmf_menu == {"*6": MenuAction.TOGGLE_MUTE}
    args = build_parser().parse_args(["serve", "--srtp", "required", "--rtp-timeout", "12.5", "--recording-rate",
                                      "48000", "--dtmf-menu", "*6=toggle_mute", "--dtmf-menu", "#0=leave"])
    config = config_from_args(args)
    assert (config.srtp, config.rtp_timeout, config.recording_rate) == (SrtpPolicy.REQUIRED, 12.5, 48000)
    assert config.dtmf_menu == {"*6": MenuAction.TOGGLE_MUTE, "#0": MenuAction.LEAVE}
    assert config_from_args(build_parser().parse_args(["serve", "--dtmf-menu", "none"])).dtmf_menu == {}


def test_bad_media_options_are_refused() -> None:
    for argv in (["--srtp", "maybe"], ["--recording-rate", "44100"], ["--dtmf-menu", "*6=fly"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", *argv])
    for argv in (["--rtp-timeout", "0"], ["--dtmf-menu", "6=mute", "--dtmf-menu", "*6=leave"]):
        with pytest.raises(ValueError):
            config_from_args(build_parser().parse_args(["serve", *argv]))


def test_port_range_parsing() -> None:
    assert parse_port_range("30000-30999") == (30000, 30999)
    for bad in ("30000", "a-b", "40000-30000", "80-90", "30000-70000"):
        try:
            parse_port_range(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} accepted")


def test_console_script_and_module_both_answer_help() -> None:
    script = Path(sys.executable).with_name("confbridge")
    for command in ([str(script), "serve", "--help"], [sys.executable, "-m", "confbridge", "serve", "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
        for option in ("--bind", "--public-address", "--sip-port", "--rtp-ports", "--http-port", "--data-dir",
                       "--token"):
            assert option in result.stdout


def test_generated_token_is_printed_stored_and_reused_and_conferences_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data, token=None)
    try:
        assert (data / "token").read_text().strip() == first.token
        assert len(first.token) >= 24
        conference = first.api.post("/conferences", {"type": "conference", "name": "kept"})
    finally:
        assert first.stop() == 0
    again = start_server(data, token=None)
    try:
        assert again.token == first.token, "the stored token is reused"
        kept = again.api.get(f"/conferences/{conference['id']}")
        assert kept["direct_hash"] == conference["direct_hash"] and kept["status"] == "progressing"
        assert kept["customer_id"] == conference["customer_id"]
    finally:
        assert again.stop() == 0


def test_explicit_token_replaces_nothing_but_adds_access(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", token="chosen-token")
    try:
        assert server.token == "chosen-token"
        assert ApiClient(server.http_url, "chosen-token").get("/conferences")["result"] == []
        assert not (tmp_path / "data" / "token").exists(), "an explicit token is not written to the data dir"
    finally:
        assert server.stop() == 0
