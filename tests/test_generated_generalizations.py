"""Every sentence that generalizes ("no configuration ...", "RF8 is ...", "X is best", "wins", "smaller
than ...") sits inside a generated block of README.md / docs/study.md, or in a generated string of the flow
report's code, where a renderer computes it from a record and names the set it covers (issue 22, item 3).

A hand-written conclusion drifts from its record the day the record is re-run; this test names every
such sentence outside a block. Descriptions of how the code works do not match the patterns below; a
sentence that does but is not a conclusion can be rephrased."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/study.md", "docs/claims.md")
#: modules whose plain (non f-string) text reaches the flow's report.md
REPORT_MODULES = ("rf8sim/study/flow/report.py", "rf8sim/study/flow/answer.py")

#: what a generalizing sentence looks like (case-insensitive)
PATTERNS = (
    r"\bno (uniform |other |single |8-bit )?(configuration|format|variant)s?\b",
    r"\bRF8(?:'s)? (is|are|beats|wins|loses|stays|keeps|reaches|matches|costs)\b",
    r"\b(is|are) (the |clearly |about )?(best|worst|smallest|largest|cheapest|better|worse|smaller|larger|cheaper)\b",
    r"\bbest\b",
    r"\bwins?\b",
    r"\bbeats (?!for\b)",
    r"\boutperform",
    r"\b(smaller|larger|better|worse|cheaper|lower|higher) than (int8|e4m3|e5m2|bf16|rf8|its|every|any)\b",
    r"\beverywhere\b",
    r"\bat every (shape|size|width|point|setting)\b",
    r"\bcannot rank\b",
    r"\bno measurable\b",
    r"\b(about|roughly|nearly) as (much|fast|small|large|good|accurate)\b",
    r"\b(always|never|consistently) (smaller|larger|better|worse|cheaper|wins|loses)\b",
)
_RX = [re.compile(p, re.I) for p in PATTERNS]
_BEGIN = re.compile(r"^<!-- BEGIN generated:")
_END = re.compile(r"^<!-- END generated:")


def generalizing_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line outside generated blocks and code that matches a pattern."""
    hits, block, fence = [], False, False
    for i, line in enumerate(text.splitlines(), 1):
        if _BEGIN.match(line):
            block = True
            continue
        if _END.match(line):
            block = False
            continue
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if block or fence:
            continue
        prose = re.sub(r"`[^`]*`", "", line)  # code spans name things, they do not conclude
        if any(rx.search(prose) for rx in _RX):
            hits.append((i, line.strip()))
    return hits


def plain_strings(source: str) -> list[tuple[int, str]]:
    """(line, text) of the string constants of a module that are neither docstrings nor parts of f-strings
    (an f-string's text is generated around computed values)."""
    tree = ast.parse(source)
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip]


def test_no_generalizing_sentence_outside_generated_blocks():
    found, lines = [], 0
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        lines += text.count("\n")
        found += [f"{page}:{i}: {line[:160]}" for i, line in generalizing_lines(text)]
    assert lines > 1000  # the pages were read
    assert not found, ("generalizing sentences outside a generated block (generate them from their record with "
                       "rf8sim.infra.docgen, naming the set they cover):\n" + "\n".join(found))


def test_no_generalizing_plain_text_in_the_report_code():
    found, n = [], 0
    for mod in REPORT_MODULES:
        for lineno, s in plain_strings((ROOT / mod).read_text(encoding="utf-8")):
            n += 1
            if any(rx.search(s) for rx in _RX):
                found.append(f"{mod}:{lineno}: {s[:160]!r}")
    assert n > 50
    assert not found, "hand-written generalizations in the flow report's code:\n" + "\n".join(found)


def test_the_check_can_fail():
    page = ("intro\n<!-- BEGIN generated:k -->\nRF8 is the best format.\n<!-- END generated:k -->\n"
            "```\nno configuration here is code\n```\n"
            "RF8 is clearly smaller than int8 everywhere.\nThe `best` option names a flag.\n"
            "E4M3 beats RF8 at every shape.\nverified beat for beat\n")
    assert [i for i, _ in generalizing_lines(page)] == [8, 10]
    src = 'X = "no configuration meets it"\nY = f"{X} is best"\ndef f():\n    "RF8 is best (a docstring)"\n'
    assert [s for _, s in plain_strings(src) if any(rx.search(s) for rx in _RX)] == ["no configuration meets it"]
