"""Independent reference oracles for the tests, written unlike the package they check.

Every module computes from a definition with Python integers and ``fractions.Fraction``
(or, where a result is proven exact, numpy float64), never through rf8sim's kernels or tables:

* :mod:`oracles.exact`    - floor(log2) and round half to even on exact rationals
* :mod:`oracles.formats`  - the 8-bit format tables, encode (per element and vectorized), products
* :mod:`oracles.binary32` - IEEE binary32: decoding 8/16-bit codes, the one float32 rounding
  (:func:`oracles.binary32.rne_f32`), the fp32 and aligned:K:M accumulators
* :mod:`oracles.fixed_acc` - a GEMM row through the fixed-point accumulator (floor, k order, saturation)
* :mod:`oracles.w8a16`    - the W8A16 contract of the torch emulation (16-bit activations, scaled weights)
* :mod:`oracles.training` - the torch quantizer (nearest / paper / truncate, scale exponents)
* :mod:`oracles.zoo`      - the format zoo (APoT, LNS, posits, E2M1, RF8 three-term variants)

Tests import them as ``from oracles import formats as ref`` (``tests/`` is on ``sys.path``).
"""
