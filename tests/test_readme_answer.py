"""The README leads with the answer: its first section is the generated block built from the records."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_first_section_is_the_generated_answer():
    text = README.read_text()
    first = re.search(r"^## (.+)$", text, re.M)
    assert first and first.group(1) == "The answer"
    body = text[first.end():text.index("\n## ", first.end())]
    block = re.search(r"<!-- BEGIN generated:readme:answer -->\n(.*?)<!-- END generated:readme:answer -->", body, re.S)
    assert block, "the answer section holds the readme:answer block"
    bullets = [ln for ln in block.group(1).splitlines() if ln.startswith("- ")]
    assert len(bullets) >= 3  # arrays, MiniLM, flow noise
    assert any("array_cost.json" in b for b in bullets) and any("MiniLM" in b for b in bullets)
