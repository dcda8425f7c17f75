"""rf8sim.tech: technology names and the sky130 cell library characterized here."""

import pytest

from rf8sim import tech
from rf8sim.errors import RF8SimError


def test_technology_names():
    assert tech.check(None) == "osu018"
    assert tech.check("SKY130") == "sky130"
    with pytest.raises(tech.TechError, match=r"unknown technology 'gf180'; valid: osu018, sky130"):
        tech.check("gf180")
    assert issubclass(tech.TechError, RF8SimError)
