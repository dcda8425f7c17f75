"""Every README snippet runs as printed (issue 22, probe 11); doc snippets are checked for syntax and
API names (they include long runs and usage synopses).

* README python blocks run in a fresh namespace in a temporary folder; a warning raised by rf8sim or by
  the snippet itself (a deprecated name, a BackSlash step larger than the weights) fails the test.
* README ``$ rf8sim ...`` lines parse with the real CLI parser (alternatives ``a|b`` and optional
  ``[...]`` parts expanded); the quick ones (formats, table, encode, decode) run.
* docs python blocks compile and their ``from rf8sim... import`` names exist; the ``rf8sim ...`` lines
  of docs code blocks name existing subcommands and options.
"""

from __future__ import annotations

import ast
import importlib
import itertools
import re
import shlex
import warnings
from pathlib import Path

import pytest

from rf8sim.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)\s*$")


def _blocks(path: Path) -> list[tuple[str, int, str]]:
    """(language, first line number, text) of every fenced block of ``path``."""
    out, lang, start, buf = [], None, 0, []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = FENCE.match(line)
        if m and lang is None:
            lang, start, buf = m.group(1) or "text", i + 1, []
        elif line.strip() == "```" and lang is not None:
            out.append((lang, start, "\n".join(buf) + "\n"))
            lang = None
        elif lang is not None:
            buf.append(line)
    return out


README_PY = [(n, code) for lang, n, code in _blocks(ROOT / "README.md") if lang == "python"]
DOC_PY = [(f"{p.name}:{n}", code) for p in sorted((ROOT / "docs").glob("*.md"))
          for lang, n, code in _blocks(p) if lang == "python"]


def test_the_readme_has_its_snippets():
    assert len(README_PY) >= 3


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("line,code", README_PY, ids=[f"README.md:{n}" for n, _ in README_PY])
def test_readme_python_snippet_runs_as_printed(line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = f"README.md:{line}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(code, name, "exec"), {"__name__": "__readme__"})  # noqa: S102 - the snippet, as printed
    ours = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught
            if w.filename == name or str(ROOT / "rf8sim") in str(w.filename)]
    assert ours == []


def _readme_commands() -> list[tuple[int, str]]:
    out = []
    for _lang, n, code in _blocks(ROOT / "README.md"):
        for k, line in enumerate(code.splitlines()):
            if line.startswith("$ rf8sim "):
                out.append((n + k, line[2:]))
    return out


def _variants(command: str) -> list[list[str]]:
    """argv lists of a printed command: ``a|b`` tokens expanded, each ``[...]`` group with and without."""
    toks = shlex.split(command, comments=True)[1:]
    parts: list[list[list[str]]] = []  # each part: its alternatives (token lists)
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.startswith("["):
            j = i
            while not toks[j].endswith("]"):
                j += 1
            group = [x.strip("[]") for x in toks[i:j + 1]]
            parts.append([[], group])
            i = j + 1
            continue
        parts.append([[a] for a in t.split("|")] if "|" in t and not t.startswith("-") else [[t]])
        i += 1
    return [[x for alt in combo for x in alt] for combo in itertools.product(*parts)]


RUN_NOW = {"formats", "table", "encode", "decode"}


@pytest.mark.parametrize("line,command", _readme_commands(), ids=[f"README.md:{n}" for n, _ in _readme_commands()])
def test_readme_command_parses_and_quick_ones_run(line, command, capsys, tmp_path, monkeypatch):
    parser = build_parser()
    for argv in _variants(command):
        try:
            parser.parse_args(argv)
        except SystemExit as e:  # argparse printed why
            pytest.fail(f"README.md:{line}: `rf8sim {' '.join(argv)}` does not parse (exit {e.code}): "
                        f"{capsys.readouterr().err.strip()}")
        if argv[0] in RUN_NOW:
            monkeypatch.chdir(tmp_path)
            assert main(argv) == 0, capsys.readouterr().err


def test_readme_commands_were_found():
    cmds = {c.split()[1] for _, c in _readme_commands()}
    assert {"formats", "encode", "verilog", "synth", "rtlsim", "flow", "study", "claims"} <= cmds


@pytest.mark.parametrize("where,code", DOC_PY, ids=[w for w, _ in DOC_PY])
def test_doc_python_snippet_compiles_and_names_exist(where, code):
    tree = ast.parse(code, filename=where)  # a SyntaxError names the block
    checked = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rf8sim":
            mod = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(mod, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), \
                    f"{where}: {node.module} has no {alias.name}"
                checked += 1
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "rf8sim":
                    importlib.import_module(alias.name)
                    checked += 1
    assert checked > 0, f"{where}: no rf8sim name imported (a python block that is not code should be ```text)"


def _doc_commands() -> list[tuple[str, str]]:
    out = []
    for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for _lang, n, code in _blocks(p):
            for k, line in enumerate(code.splitlines()):
                s = line[2:] if line.startswith("$ ") else line
                if s.startswith("rf8sim "):
                    out.append((f"{p.name}:{n + k}", s))
    return out


def _subparser(parser, name):
    for a in parser._actions:
        if a.__class__.__name__ == "_SubParsersAction" and name in a.choices:
            return a.choices[name]
    return None


@pytest.mark.parametrize("where,command", _doc_commands(), ids=[w for w, _ in _doc_commands()])
def test_doc_command_names_existing_options(where, command):
    toks = [t.strip("[]") for t in shlex.split(command.replace("|", " "), comments=True)[1:]]
    sub = _subparser(build_parser(), toks[0])
    assert sub is not None, f"{where}: no subcommand {toks[0]!r}"
    deeper = _subparser(sub, toks[1]) if len(toks) > 1 else None
    sub = deeper or sub
    for t in toks:
        if re.match(r"--?[A-Za-z]", t):
            opt = t.split("=", 1)[0]
            assert opt in sub._option_string_actions, f"{where}: `{command}`: {sub.prog} has no option {opt}"
