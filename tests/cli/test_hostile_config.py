"""A broken configuration (~/.swarm-engine/config.toml, ./swarm-engine/config.toml,
SWARM_* variables) is one line naming the file or variable, the key and what
was expected, for every command, `swarm config` included."""

from __future__ import annotations

import os
import typing

import pytest

from swarm_engine import ConfigError
from swarm_engine.llm.spec import Llm
from swarm_engine.settings import DEFAULTS, FALSE_WORDS, TRUE_WORDS, LlmSettings, load_settings
from tests.inprocess import assert_one_error_line, isolate, run_swarm
from tests.paths import TROUBLESHOOTING


@pytest.fixture
def config(tmp_path, monkeypatch):
    return isolate(monkeypatch, tmp_path / "home")


BAD_FILES = [
    # config.toml bytes, fragments of the one error line
    (b"[eval]\nruns = 3 # caf\xe9\n", ["config.toml:2:", "not valid UTF-8", "byte 0xe9"]),
    (b"[eval]\nruns = 0\n", ["config.toml:2:", "eval.runs: got 0, expected an int in 1..1000000000"]),
    (b"[eval]\nruns = -7\n", ["eval.runs: got -7"]),
    (b"[eval]\nseed = 18446744073709551616\n", ["eval.seed: got 18446744073709551616", "0..18446744073709551615"]),
    (b'[learning]\nenabled = "yes"\n', ["config.toml:2:", "learning.enabled: Expected `bool`, got `str` 'yes'"]),
    (b"[learning]\ndaemon_serve_port = 70000\n",
     ["learning.daemon_serve_port: got 70000, expected an int in 0..65535"]),
    (b'[llm]\nprovider = "gpt"\n', ["llm.provider: Invalid enum value 'gpt'"]),
    (b"[eval]\nrun = 3\n", ["eval.run: unknown field `run` (known: runs, seed, jobs, reports_dir, llm_fallback)"]),
    (b"[nope]\n", ["nope: unknown field `nope` (known: eval, llm, learning)"]),
    (b"eval = 3\n", ["eval: Expected `object`, got `int`"]),
    (b"[eval\n", ["TOML syntax error"]),
    (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", ["nested deeper than 32 levels"]),
]


@pytest.mark.parametrize(("data", "fragments"), BAD_FILES, ids=[f[1][-1][:40] for f in BAD_FILES])
@pytest.mark.parametrize("command", [("config",), ("eval", str(TROUBLESHOOTING), "-q")], ids=["config", "eval"])
def test_bad_config_file_is_one_line(config, capsys, data, fragments, command):
    config.write_bytes(data)
    assert_one_error_line(run_swarm(capsys, *command), *fragments, code=1)


def test_project_config_is_validated_too(config, tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    (project / "swarm-engine").mkdir(parents=True)
    (project / "swarm-engine" / "config.toml").write_text("[eval]\nruns = 1.5\n", encoding="utf-8")
    monkeypatch.chdir(project)
    line = assert_one_error_line(run_swarm(capsys, "config"), code=1)
    assert "swarm-engine/config.toml:2: eval.runs: Expected `int`, got `float` 1.5" in line


def test_config_fifo_and_directory(config, capsys):
    os.mkfifo(config)
    assert_one_error_line(run_swarm(capsys, "config"), "a FIFO, not a regular file", code=1)
    config.unlink()
    config.mkdir()
    assert_one_error_line(run_swarm(capsys, "config"), "cannot read", code=1)


BAD_ENV = [
    ("SWARM_EVAL_RUNS", "-7", "$SWARM_EVAL_RUNS: eval.runs: got -7, expected an int in 1..1000000000"),
    ("SWARM_EVAL_RUNS", "0", "got 0"),
    ("SWARM_EVAL_RUNS", "abc", "$SWARM_EVAL_RUNS: eval.runs: got 'abc', expected an int"),
    ("SWARM_EVAL_RUNS", "1e3", "expected an int"),
    ("SWARM_EVAL_SEED", "99999999999999999999999", "eval.seed: got 99999999999999999999999"),
    ("SWARM_EVAL_JOBS", "-1", "$SWARM_EVAL_JOBS: eval.jobs: got -1, expected an int in 0..1024"),
    ("SWARM_LEARNING_ENABLED", "maybe", "learning.enabled: got 'maybe', expected a boolean: 1, true, yes, on or 0"),
    ("SWARM_EVAL_LLM_FALLBACK", "2", "expected a boolean"),
    ("SWARM_LEARNING_DAEMON_MINUTES", "-1", "learning.daemon_minutes: got -1"),
    ("SWARM_LLM_PROVIDER", "gpt", "$SWARM_LLM_PROVIDER: llm.provider: Invalid enum value 'gpt'"),
]


@pytest.mark.parametrize(("var", "value", "fragment"), BAD_ENV, ids=[f"{v}={x}" for v, x, _ in BAD_ENV])
def test_bad_environment_variable_is_one_line(config, capsys, monkeypatch, var, value, fragment):
    monkeypatch.setenv(var, value)
    assert_one_error_line(run_swarm(capsys, "config"), fragment, code=1)
    with pytest.raises(ConfigError):
        load_settings()


@pytest.mark.parametrize("word", [*TRUE_WORDS, *FALSE_WORDS, "TRUE", " Off "])
def test_documented_boolean_spellings(config, monkeypatch, word):
    monkeypatch.setenv("SWARM_LEARNING_ENABLED", word)
    s = load_settings()
    assert s.get("learning", "enabled") is (word.strip().lower() in TRUE_WORDS)
    assert s.sources["learning.enabled"] == "$SWARM_LEARNING_ENABLED"


def test_config_booleans_must_be_toml_booleans(config):
    config.write_text("[learning]\nenabled = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="Expected `bool`, got `int`"):
        load_settings()
    config.write_text("[learning]\nenabled = true\n", encoding="utf-8")
    assert load_settings().get("learning", "enabled") is True


def test_valid_layers_merge(config, monkeypatch):
    config.write_text("[eval]\nruns = 7\nseed = 18446744073709551615\n", encoding="utf-8")
    monkeypatch.setenv("SWARM_EVAL_RUNS", "9")
    s = load_settings()
    assert s.get("eval", "runs") == 9 and s.get("eval", "seed") == 2**64 - 1
    assert s.sources["eval.runs"] == "$SWARM_EVAL_RUNS" and s.sources["eval.seed"] == str(config)


def test_defaults_are_the_documented_ones():
    assert DEFAULTS["eval"] == {"runs": 1, "seed": 42, "jobs": 0, "reports_dir": "", "llm_fallback": False}
    assert set(typing.get_args(typing.get_type_hints(LlmSettings)["provider"])) == \
        set(typing.get_args(typing.get_type_hints(Llm)["provider"]))


def test_config_seed_with_runs_past_2_64(config, capsys):
    config.write_text("[eval]\nseed = 18446744073709551614\nruns = 5\n", encoding="utf-8")
    assert_one_error_line(run_swarm(capsys, "eval", TROUBLESHOOTING, "-q"), "--seed: 5 runs from seed", code=1)
