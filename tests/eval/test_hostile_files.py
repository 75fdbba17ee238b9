"""Files that are not scenarios, or are endless or too deep: one line each,
at once, never a hang, a MemoryError or a RecursionError."""

from __future__ import annotations

import os
import shutil

import pytest

from swarm_engine import ScenarioError, load_scenario
from swarm_engine.eval.loader import parse_scenario
from swarm_engine.inputs import limits
from tests.inprocess import assert_one_error_line, isolate, run_swarm
from tests.paths import TROUBLESHOOTING


def load_error(path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize("opener, closer", [("[", "]"), ("{a = ", "}")], ids=["arrays", "inline-tables"])
def test_deep_nesting_is_refused_with_its_line(tmp_path, opener, closer):
    path = tmp_path / "deep.toml"
    path.write_text("# a comment [[[[\n" + "x = " + opener * 20_000 + closer * 20_000 + "\n", encoding="utf-8")
    err = load_error(path)
    assert f"nested deeper than {limits.MAX_DEPTH} levels" in str(err)
    assert err.line == 2                  # brackets in comments do not count


def test_moderate_nesting_past_the_limit(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text('s = "[[[[[[[["\n' + "x = " + "[" * 40 + "]" * 40 + "\n", encoding="utf-8")
    err = load_error(path)
    assert "nested deeper than" in str(err) and err.line == 2


def test_deep_table_headers_count_too(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("[" + ".".join(f"t{i}" for i in range(40)) + "]\nx = 1\n", encoding="utf-8")
    assert "nested deeper than" in str(load_error(path))


def test_dev_zero_is_not_read():
    err = load_error("/dev/zero")
    assert str(err) == "/dev/zero: cannot read: a character device, not a regular file"


def test_a_fifo_is_not_opened_for_a_blocking_read(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    err = load_error(fifo)                # would block forever without O_NONBLOCK + fstat
    assert "a FIFO, not a regular file" in str(err)


def test_a_fifo_in_a_scenario_folder_is_one_error(tmp_path, monkeypatch, capsys):
    isolate(monkeypatch, tmp_path / "home")
    folder = tmp_path / "scenarios"
    folder.mkdir()
    shutil.copy(TROUBLESHOOTING, folder / "a.toml")
    os.mkfifo(folder / "b.toml")
    out = run_swarm(capsys, "eval", folder, "-n", "1", "-q")
    # a directory eval: one line for the bad file, the others still run, exit 1 at the end
    assert out.code == 1 and "Traceback" not in out.err + out.out, out
    bad = [line for line in out.err_lines if "b.toml" in line]
    assert len(bad) == 1 and bad[0].startswith("error: ") and "a FIFO, not a regular file" in bad[0], out.err


def test_a_directory_is_not_a_scenario(tmp_path):
    assert "cannot read" in str(load_error(tmp_path))


def test_size_limit(tmp_path):
    path = tmp_path / "big.toml"
    with open(path, "wb") as f:
        f.truncate(limits.MAX_SCENARIO_BYTES + 1)
    err = load_error(path)
    assert f"file too large: {limits.MAX_SCENARIO_BYTES + 1} bytes, the limit is" in str(err)


@pytest.mark.parametrize("data, line", [(b"\xff\xfe[meta]\n", 1), (b"[meta]\nname = \"caf\xe9\"\n", 2)],
                         ids=["utf16-bom", "latin1"])
def test_invalid_utf8_names_line_and_column(tmp_path, data, line):
    path = tmp_path / "enc.toml"
    path.write_bytes(data)
    err = load_error(path)
    assert err.line == line and "not valid UTF-8" in str(err)


def test_missing_file_message_is_unchanged(tmp_path):
    assert str(load_error(tmp_path / "nope.toml")) == f"{tmp_path / 'nope.toml'}: file not found"


def test_syntax_error_keeps_line_and_column():
    with pytest.raises(ScenarioError) as info:
        parse_scenario("[meta]\nname = \n", "s.toml")
    assert info.value.line == 2 and "TOML syntax error" in str(info.value) and "(column" in str(info.value)


def test_list_variants_reads_safely(tmp_path, monkeypatch, capsys):
    isolate(monkeypatch, tmp_path / "home")
    out = run_swarm(capsys, "eval", "/dev/zero", "--list-variants")
    assert_one_error_line(out, "/dev/zero", "character device", code=1)


def test_control_characters_echoed_in_errors_are_escaped(tmp_path):
    """An unknown key named with a carriage return or an escape sequence cannot
    break the one line or drive the terminal (found by tests/eval/test_fuzz_inputs.py)."""
    path = tmp_path / "ctl.toml"
    path.write_text(TROUBLESHOOTING.read_text(encoding="utf-8").replace(
        "[app_config]", '[app_config]\n"max\\r\\u001b[31mticks" = 5', 1), encoding="utf-8")
    text = str(load_error(path))
    assert "\r" not in text and "\x1b" not in text
    assert "max\\r\\x1b[31mticks" in text
