"""Constrained decoding: the GBNF grammar's language is exactly the set of
canonical answers; the JSON schema accepts exactly the canonical objects."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_engine.errors import ConfigError
from swarm_engine.llm.grammar import gbnf_for, gbnf_literal, json_schema_for, response_format_for
from swarm_engine.llm.prompts import answer_json
from swarm_engine.llm.protocol import Choice
from tests.conftest import wait_for

# -- a tiny GBNF reader: llama.cpp's syntax for the subset the engine emits ---
# rule   ::= name "::=" alts            name: [a-zA-Z0-9-]+ (llama.cpp's is_word_char)
# alts   ::= seq ("|" seq)*
# seq    ::= (item "?"?)*
# item   ::= literal | name | "(" alts ")"
# literal: "..." with llama.cpp's parse_char escapes \x \u \U \t \r \n \\ \" \[ \]

_ESC = {"t": "\t", "r": "\r", "n": "\n", "\\": "\\", '"': '"', "[": "[", "]": "]"}
_HEX = {"x": 2, "u": 4, "U": 8}


class Gbnf:
    def __init__(self, text: str) -> None:
        self.rules: dict[str, tuple] = {}
        for line in text.split("\n"):      # llama.cpp ends lines at \n (and \r) only
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = re.match(r"^([a-zA-Z0-9-]+) ::= (.*)$", line)
            assert m, f"not a rule line: {line!r}"
            assert m.group(1) not in self.rules, f"rule {m.group(1)} defined twice"
            self.src, self.pos = m.group(2), 0
            self.rules[m.group(1)] = self._alts()
            self._space()
            assert self.pos == len(self.src), f"trailing text in {line!r} at {self.pos}"
        assert "root" in self.rules

    def _space(self) -> None:
        while self.pos < len(self.src) and self.src[self.pos] == " ":
            self.pos += 1

    def _alts(self) -> tuple:
        alts = [self._seq()]
        while self.pos < len(self.src) and self.src[self.pos] == "|":
            self.pos += 1
            alts.append(self._seq())
        return ("alt", alts)

    def _seq(self) -> tuple:
        items = []
        while True:
            self._space()
            if self.pos >= len(self.src) or self.src[self.pos] in "|)":
                return ("seq", items)
            ch = self.src[self.pos]
            if ch == '"':
                item = ("lit", self._literal())
            elif ch == "(":
                self.pos += 1
                item = self._alts()
                assert self.src[self.pos] == ")", "unclosed group"
                self.pos += 1
            else:
                m = re.compile(r"[a-zA-Z0-9-]+").match(self.src, self.pos)
                assert m, f"unexpected {self.src[self.pos:self.pos + 10]!r}"
                self.pos = m.end()
                item = ("ref", m.group(0))
            if self.pos < len(self.src) and self.src[self.pos] == "?":
                self.pos += 1
                item = ("opt", item)
            items.append(item)

    def _literal(self) -> str:
        self.pos += 1
        out = []
        while self.src[self.pos] != '"':
            ch = self.src[self.pos]
            assert ch not in "\r\n"
            if ch == "\\":
                esc = self.src[self.pos + 1]
                if esc in _HEX:
                    digits = self.src[self.pos + 2:self.pos + 2 + _HEX[esc]]
                    out.append(chr(int(digits, 16)))
                    self.pos += 2 + _HEX[esc]
                    continue
                assert esc in _ESC, f"unknown escape \\{esc}"
                out.append(_ESC[esc])
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1
        self.pos += 1
        return "".join(out)

    def language(self, node: tuple | None = None) -> set[str]:
        """Every string the grammar matches (it must be finite: no recursion)."""
        node = node or ("ref", "root")
        kind, value = node
        if kind == "lit":
            return {value}
        if kind == "ref":
            assert value in self.rules, f"undefined rule {value}"
            return self.language(self.rules[value])
        if kind == "opt":
            return {""} | self.language(value)
        if kind == "alt":
            return set().union(*(self.language(v) for v in value))
        out = {""}
        for item in value:
            out = {a + b for a in out for b in self.language(item)}
        return out


TROUBLESHOOTING = [Choice("CheckStatus", s) for s in ("api-gateway", "db-primary", "db-replica", "cache")] + [
    Choice("ReadLogs", "api-gateway"), Choice("ReadLogs", "db-primary"), Choice("AnalyzeMetrics", "cache"),
    Choice("Diagnose", "db-primary", "MemoryLeak"), Choice("Diagnose", "db-primary", "DiskFull"),
    Choice("Restart", "db-primary")]

CHOICE_SETS = {
    "single": [Choice("Restart", "db")],
    "troubleshooting": TROUBLESHOOTING,
    "prefixes": [Choice("A", "x"), Choice("A", "xy"), Choice("A", "x", "y"), Choice("AB", "x"), Choice("A")],
    "duplicates": [Choice("A", "x"), Choice("A", "x", score=3.0), Choice("B")],
    "escapes": [Choice('Say"Hi"', 'C:\\dir\\f"x"'), Choice("Grep", "a\tb\nc\x01"), Choice("Grep", "[x] | (y)?")],
    "unicode": [Choice("Grep", "naïve ünïcode ✓"), Choice("Grep", "日本"), Choice("Grep", "emoji 🚀")],
    "no_target": [Choice("Restart"), Choice("Stop"), Choice("Grep", None, "TODO")],
}


@pytest.mark.parametrize("factor", [True, False], ids=["factored", "flat"])
@pytest.mark.parametrize("name", sorted(CHOICE_SETS))
def test_gbnf_language_is_exactly_the_answers(name, factor):
    choices = CHOICE_SETS[name]
    grammar = gbnf_for(choices, factor=factor)
    assert Gbnf(grammar).language() == {answer_json(c) for c in choices}


def test_gbnf_shapes():
    assert gbnf_for([Choice("Restart", "db")]) == 'root ::= "{\\"tool\\": \\"Restart\\", \\"target\\": \\"db\\"}"\n'
    flat = gbnf_for([Choice("A"), Choice("B")], factor=False)
    assert flat.splitlines() == ["root ::= c0 | c1", 'c0 ::= "{\\"tool\\": \\"A\\"}"', 'c1 ::= "{\\"tool\\": \\"B\\"}"']
    factored = gbnf_for(TROUBLESHOOTING)
    # the common prefix is emitted once
    assert factored.count('\\"tool\\": \\"') == 1 and len(factored.splitlines()) == 1


@pytest.mark.parametrize("text, literal", [
    ('a"b', '"a\\"b"'), ("a\\b", '"a\\\\b"'), ("a\nb\tc\r", '"a\\nb\\tc\\r"'), ("\x00\x7f", '"\\x00\\x7F"'),
    ("ü✓", '"ü✓"'), ("", '""'), ("\x85\u2028", '"\\x85\\u2028"')])
def test_gbnf_literal(text, literal):
    assert gbnf_literal(text) == literal
    assert Gbnf(f"root ::= {literal}").language() == {text}


names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(names, st.none() | names, st.none() | names), min_size=1, max_size=12))
def test_gbnf_language_property(triples):
    choices = [Choice(a, t, g) for a, t, g in triples]
    answers = {answer_json(c) for c in choices}
    assert Gbnf(gbnf_for(choices)).language() == answers
    assert Gbnf(gbnf_for(choices, factor=False)).language() == answers


def test_empty_choices_rejected():
    with pytest.raises(ConfigError):
        gbnf_for([])
    with pytest.raises(ConfigError):
        json_schema_for([])


@pytest.mark.parametrize("name", sorted(CHOICE_SETS))
def test_json_schema_accepts_exactly_the_answers(name):
    choices = CHOICE_SETS[name]
    schema = json_schema_for(choices)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    answers = [json.loads(answer_json(c)) for c in choices]
    for obj in answers:
        assert validator.is_valid(obj), obj
    # crossing tools and targets, dropping or adding keys, wrong types: all rejected
    tools = {c.action for c in choices}
    targets = {c.target for c in choices} | {"elsewhere"}
    for tool in tools:
        for target in targets:
            for arg in {c.arg for c in choices}:
                obj = {"tool": tool, **({"target": target} if target else {}), **({"arg": arg} if arg else {})}
                assert validator.is_valid(obj) is (obj in answers), obj
    first = answers[0]
    assert not validator.is_valid({**first, "reason": "because"})
    assert not validator.is_valid({k: v for k, v in first.items() if k != "tool"})
    assert not validator.is_valid({**first, "tool": 3})
    assert not validator.is_valid([first])


def test_json_schema_shape():
    schema = json_schema_for([Choice("ReadLogs", "api"), Choice("ReadLogs", "api"), Choice("Grep", None, "x")])
    assert schema == {"type": "object", "anyOf": [
        {"type": "object", "properties": {"tool": {"type": "string", "const": "ReadLogs"},
                                          "target": {"type": "string", "const": "api"}},
         "required": ["tool", "target"], "additionalProperties": False},
        {"type": "object", "properties": {"tool": {"type": "string", "const": "Grep"},
                                          "arg": {"type": "string", "const": "x"}},
         "required": ["tool", "arg"], "additionalProperties": False}]}
    json.dumps(schema)      # plain JSON all the way down


@pytest.mark.parametrize("kind, expected", [
    ("json_schema", {"type": "json_schema", "json_schema": {"name": "decision", "schema": {"type": "object"},
                                                            "strict": True}}),
    ("json_object", {"type": "json_object"}),
    (None, None)])
def test_response_format(kind, expected):
    assert response_format_for({"type": "object"}, kind) == expected


def test_response_format_rejects_unknown():
    with pytest.raises(ConfigError, match="unknown response_format"):
        response_format_for({}, "grammar")
    with pytest.raises(ConfigError, match="needs a schema"):
        response_format_for(None, "json_schema")


# -- optional: the real llama.cpp grammar engine -------------------------------

def _llama_server() -> tuple[Path, Path] | None:
    from swarm_engine.llm.models import default_model_path, server_binary, server_unavailable

    if server_unavailable() is not None:
        return None
    return server_binary(None)[0], default_model_path()


@pytest.mark.slow
def test_real_llama_server_obeys_the_grammar(tmp_path):
    import socket

    import httpx

    found = _llama_server()
    if found is None:
        pytest.skip("no llama-server binary or SmolLM2 GGUF installed")
    server, model = found
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "LD_LIBRARY_PATH": str(server.parent)}
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([str(server), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
                             "-c", "2048", "-np", "1", "-t", "2"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        # a deadline against hangs, not a speed check: a loaded 2-core machine took > 60 s
        with httpx.Client(trust_env=False, timeout=300) as client:
            def healthy() -> bool:
                try:
                    return client.get(f"http://127.0.0.1:{port}/health").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(healthy, "llama-server to become healthy", timeout=60)
            for name in ("troubleshooting", "escapes", "unicode", "prefixes"):
                choices = CHOICE_SETS[name]
                answers = {answer_json(c) for c in choices}
                for seed in (0,):
                    r = client.post(f"http://127.0.0.1:{port}/completion", json={
                        "prompt": "Pick one action as JSON:", "grammar": gbnf_for(choices), "n_predict": 96,
                        "temperature": 0.8, "seed": seed})
                    assert r.status_code == 200, r.text
                    assert r.json()["content"] in answers
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
