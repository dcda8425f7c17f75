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


def test_each_technology_record_has_its_array_line_recounted():
    """One array line per checked-in array-cost record (osu018, sky130): the registered-edge TOPS/W ratio is
    recounted here from the record's rows as the baseline's pJ/MAC over RF8 x BF16's (same clock target, the
    leakage shift at fmax being below the printed precision is checked by the equality itself)."""
    import json

    from rf8sim.study.flow.answer import ARRAY_RECORDS

    text = README.read_text()
    root = README.parent
    seen = 0
    for rec_path, tech in ARRAY_RECORDS:
        p = root / rec_path
        if not p.is_file():
            assert tech != "osu018"
            continue
        rows = json.loads(p.read_text())["rows"]
        line = next(ln for ln in text.splitlines() if ln.startswith("- **4×4 arrays**") and f"`{rec_path}`" in ln)
        assert f"{tech} before routing" in line
        base = next(r for r in rows if r["config"]["w_fmt"] == "bf16" and r["config"]["acc"] == "fp32")
        e1 = next(r for r in rows if (r["config"]["a_fmt"], r["config"]["w_fmt"]) == ("bf16", "rf8")
                  and r["config"].get("edge_stages") == 1)
        ratio = base["tops_per_w_at_fmax"] and e1["tops_per_w_at_fmax"] / base["tops_per_w_at_fmax"]
        assert f"and {ratio:.2f}× TOPS/W" in line, (tech, ratio)
        seen += 1
    assert seen == 2  # osu018 and sky130 records are both checked in
