"""The paper's claims, measured: one module per recipe, run with ``rf8sim claims NAME``.

=================  ==========================================================
``gg-fit``         (a) generalized-Gaussian fit of all-MiniLM-L6-v2 weights
``gg-init``        (b) GG initialization vs Kaiming/Xavier
``backslash``      (c) BackSlash rate-constrained training
``deepshape``      (d) DeepShape reshaping + fine-tuning
``rf8-inference``  (e) RF8 / FP8 / int8 post-training quantization
=================  ==========================================================

Recorded results live in ``training/results/NAME.json``; ``docs/claims.md``
summarizes them.
"""

from __future__ import annotations

from .common import RECIPES  # claim name -> module (stdlib-only module, no circle with the runner)

__all__ = ["RECIPES", "run_claim"]


def run_claim(name: str, quick: bool = False, seeds: int | None = None, out=None, force: bool = False,
              progress: bool = True, console=None) -> dict:
    """Run one recipe and write its JSON result; see :mod:`rf8sim.study.claims.commands`."""
    from .runner import run_claim as _run

    return _run(name, quick=quick, seeds=seeds, out=out, force=force, progress=progress, console=console)
