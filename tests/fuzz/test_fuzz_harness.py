"""The fuzz harness as part of the test suite: its checks over the seeds and fixed mutations, and a short real run.

`check_one_input` runs over every seed file and over about 2000 inputs derived from them with a fixed
`random.Random(1234)` (byte flips, truncations, insertions, duplicated lines, splices, pure noise), so
the same inputs are tried on every run without atheris. Then the real atheris harness runs as a
subprocess for a bounded number of libFuzzer runs. atheris is a dev dependency: when it is missing
that test fails (saying how to install it) instead of skipping and hiding a missing tool.
"""

from __future__ import annotations

import importlib.util
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.fuzz_parsers import check_one_input

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "fuzz_parsers.py"
SEEDS_DIR = HERE / "seeds"
SEEDS = sorted(path for path in SEEDS_DIR.iterdir() if path.is_file())
MUTATION_COUNT = 2000
FUZZ_RUNS = 20000
FUZZ_TIMEOUT = 120
INTERESTING = [
    b"\r\n", b"\n", b"\r\n\r\n", b"\r\n ", b"\x00", b"\xff", b"\xc3\xa9", b";", b",", b":", b"=", b"<", b">",
    b'"', b"\\", b"%", b"[", b"]", b"@", b"/", b" ", b"\t", b"0", b"65536", b"4294967296", b"-1",
    b"SIP/2.0", b"sip:", b"z9hG4bK", b";tag=", b";branch=", b";rport", b"Content-Length: 0\r\n",
    b"l: 99\r\n", b"CSeq: 1 INVITE\r\n", b"Via: SIP/2.0/UDP [::1]\r\n", b"Require: foo\r\n", b"m=", b"c=", b"a=",
]


def _seed_lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [data]


def _mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 4)):
        operation = rng.randrange(7)
        position = rng.randint(0, len(data))
        if operation == 0 and data:  # flip bits of a byte, or replace it
            index = min(position, len(data) - 1)
            data[index] = data[index] ^ (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(256)
        elif operation == 1:  # truncate
            del data[position:]
        elif operation == 2:  # insert random bytes or a piece of SIP/SDP syntax
            insert = rng.choice(INTERESTING) if rng.random() < 0.6 else rng.randbytes(rng.randint(1, 8))
            data[position:position] = insert
        elif operation == 3:  # duplicate a line somewhere
            lines = _seed_lines(bytes(data))
            lines.insert(rng.randint(0, len(lines)), rng.choice(lines))
            data = bytearray(b"".join(lines))
        elif operation == 4:  # delete a line
            lines = _seed_lines(bytes(data))
            del lines[rng.randrange(len(lines))]
            data = bytearray(b"".join(lines))
        elif operation == 5:  # splice in part of another seed
            other = rng.choice(seeds)
            start = rng.randint(0, len(other))
            data[position:position] = other[start : start + rng.randint(1, 64)]
        else:  # swap CRLF line ends for bare LF
            data = bytearray(bytes(data).replace(b"\r\n", b"\n"))
    return bytes(data)


def _generated_inputs() -> list[bytes]:
    rng = random.Random(1234)
    seeds = [path.read_bytes() for path in SEEDS]
    inputs = [b"", b"\r\n", b"\n\n", b"\r\n\r\n\r\n"]
    inputs += [rng.randbytes(rng.randint(1, 200)) for _ in range(MUTATION_COUNT // 10)]
    while len(inputs) < MUTATION_COUNT:
        inputs.append(_mutate(rng, seeds))
    return inputs


def test_there_are_seeds() -> None:
    assert 10 <= len(SEEDS) <= 40, f"{len(SEEDS)} seed files in {SEEDS_DIR}"


@pytest.mark.parametrize("seed", SEEDS, ids=[path.name for path in SEEDS])
def test_seed_passes(seed: Path) -> None:
    check_one_input(seed.read_bytes())


def test_mutated_inputs_pass() -> None:
    failures: list[str] = []
    inputs = _generated_inputs()
    for number, data in enumerate(inputs):
        try:
            check_one_input(data)
        except Exception as exc:
            failures.append(f"input #{number} {data.hex()}\n  -> {type(exc).__name__}: {exc}")
    assert len(inputs) == MUTATION_COUNT
    assert not failures, f"{len(failures)} of {len(inputs)} inputs failed; the first ones:\n" + "\n".join(
        failures[:5])


@pytest.mark.timeout(FUZZ_TIMEOUT + 60)
def test_atheris_harness_runs(tmp_path: Path) -> None:
    if importlib.util.find_spec("atheris") is None:
        pytest.fail(f"atheris is not installed in {sys.executable}; it is a dev dependency of the fuzz harness: "
                    f"run `{Path(sys.executable).parent / 'pip'} install atheris`")
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS_DIR, corpus)  # libFuzzer adds what it finds to the corpus: keep the seeds clean
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    command = [sys.executable, str(HARNESS), f"-runs={FUZZ_RUNS}", "-seed=1", f"-artifact_prefix={artifacts}/",
               str(corpus)]
    try:
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, errors="replace",
                                timeout=FUZZ_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the fuzzer did not finish {FUZZ_RUNS} runs within {FUZZ_TIMEOUT} s:\n{_tail(exc.stderr)}")
    found = sorted(path.name for path in artifacts.iterdir())
    assert result.returncode == 0, (f"the fuzzer exited with {result.returncode}; artifacts {found}:\n"
                                    f"{_finding(result.stdout + result.stderr)}")
    runs = _runs_done(result.stderr)
    assert runs is not None, f"no run count in the fuzzer's output:\n{_tail(result.stderr)}"
    assert runs >= FUZZ_RUNS, f"only {runs} runs:\n{_tail(result.stderr)}"


def _runs_done(stderr: str) -> int | None:
    """The run count of libFuzzer's last report: `Done N runs in T second(s)`, else the last `#N` status line."""
    done = re.findall(r"^Done (\d+) runs", stderr, re.MULTILINE)
    if done:
        return int(done[-1])
    status = re.findall(r"^#(\d+)\s", stderr, re.MULTILINE)
    return int(status[-1]) if status else None


def _finding(output: str) -> str:
    """The Python exception atheris reported (with the input that caused it), else the end of the output."""
    start = output.find("=== Uncaught Python exception")
    return output[start:][:8000] if start >= 0 else _tail(output)


def _tail(text: str | bytes | None, limit: int = 6000) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return (text or "")[-limit:]
