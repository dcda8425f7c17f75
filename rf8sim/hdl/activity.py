"""Fast gate-level activity: a zero-delay, cycle-based evaluation of a mapped netlist (Numba),
per-net toggle counts, and a glitch model calibrated against the delay-annotated Icarus run.

Why: :func:`rf8sim.hdl.gatesim.simulate` (Icarus with the cell models' specify delays) is
the reference for glitching activity but costs minutes per thousand cycles of one MAC; a
PE array is 50-200x larger.  This module evaluates the same ``mapped.v`` from the cells'
Liberty ``function`` / ``ff`` descriptions (not from the Verilog cell models Icarus uses):

* every combinational output pin becomes a truth table over its input pins (at most 6);
* flip-flops (``ff`` groups clocked on ``CLK`` rising, no clear/preset) hold a state that the
  rising edge loads from ``next_state``; output pins are functions of that state;
* each clock period has two evaluation points like :func:`~rf8sim.hdl.gatesim.simulate`:
  the stimulus row is applied on the falling edge, the flip-flops load on the rising
  edge; after each, every gate is evaluated once in topological order, and a net whose
  settled value changed counts one toggle (zero-delay semantics: what Icarus without
  ``-gspecify`` dumps; identical counts are checked in tests/test_hdl_activity.py).

Glitches (transitions of a net between its settled values, when cell delays differ) are
then added back by a **glitch model**: the delay-annotated / zero-delay toggle ratio of
a cell output, fitted per logic-level bin (cells between the net and the nearest register
or input) on the MAC units (:func:`calibrate`, record ``hdl/results/activity_calibration.json``).
Its error per unit, in dynamic energy against the Icarus reference, is stated in that
record (leave-one-unit-out).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .mac import HdlError

__all__ = ["CellLib", "Compiled", "compile_netlist", "simulate_fast", "stim_bits", "net_levels",
           "GlitchModel", "LEVEL_BINS", "calibrate", "CALIBRATION_RECORD", "load_glitch_model"]

MAX_INPUTS = 6
#: logic-level bins of the glitch model: [lo, hi) in cells from the nearest register or input
LEVEL_BINS = (0, 1, 3, 6, 10, 16, 25, 40, 60, 100, 10**9)
CALIBRATION_RECORD = Path(__file__).resolve().parents[2] / "hdl" / "results" / "activity_calibration.json"


# ---------------------------------------------------------------------------- Liberty functions
_TOK = re.compile(r"\s*([A-Za-z_][\w\[\]\.]*|[01]|[()!'^*&+|])")


def _parse_function(text: str):
    """A Liberty boolean function -> (AST, variables).  Precedence (high to low): ``'`` / ``!``,
    ``^``, AND (``&``, ``*``, juxtaposition), OR (``+``, ``|``)."""
    s = text.strip().strip('"')
    toks, pos = [], 0
    while pos < len(s):
        if s[pos:].strip() == "":
            break
        m = _TOK.match(s, pos)
        if not m:
            raise HdlError(f"cannot parse Liberty function {text!r} at {s[pos:]!r}")
        toks.append(m.group(1))
        pos = m.end()
    i = 0
    names = []

    def peek():
        return toks[i] if i < len(toks) else None

    def take():
        nonlocal i
        if i >= len(toks):
            raise HdlError(f"Liberty function {text!r} ends early")
        i += 1
        return toks[i - 1]

    def primary():
        t = take() if peek() is not None else None
        if t is None:
            raise HdlError(f"Liberty function {text!r} ends early")
        if t == "!":
            node = ("not", primary())
        elif t == "(":
            node = or_expr()
            if peek() != ")":
                raise HdlError(f"unbalanced parentheses in Liberty function {text!r}")
            take()
        elif t in ("0", "1"):
            node = ("const", int(t))
        elif re.match(r"[A-Za-z_]", t):
            if t not in names:
                names.append(t)
            node = ("var", t)
        else:
            raise HdlError(f"unexpected {t!r} in Liberty function {text!r}")
        while peek() == "'":
            take()
            node = ("not", node)
        return node

    def xor_expr():
        node = primary()
        while peek() == "^":
            take()
            node = ("xor", node, primary())
        return node

    def and_expr():
        node = xor_expr()
        while peek() is not None and (peek() in ("&", "*", "!", "(") or re.match(r"[A-Za-z_01]", peek())):
            if peek() in ("&", "*"):
                take()
            node = ("and", node, xor_expr())
        return node

    def or_expr():
        node = and_expr()
        while peek() in ("+", "|"):
            take()
            node = ("or", node, and_expr())
        return node

    ast = or_expr()
    if i != len(toks):
        raise HdlError(f"trailing {toks[i:]} in Liberty function {text!r}")
    return ast, names


def _eval(ast, env: dict) -> int:
    op = ast[0]
    if op == "var":
        return env[ast[1]]
    if op == "const":
        return ast[1]
    if op == "not":
        return 1 - _eval(ast[1], env)
    a, b = _eval(ast[1], env), _eval(ast[2], env)
    return a & b if op == "and" else (a | b if op == "or" else a ^ b)


def _truth_table(ast, inputs: list) -> int:
    """Bit ``idx`` of the result = the function at input bits ``idx`` (inputs[0] = bit 0)."""
    tt = 0
    for idx in range(1 << len(inputs)):
        if _eval(ast, {n: (idx >> k) & 1 for k, n in enumerate(inputs)}):
            tt |= 1 << idx
    return tt


@dataclass
class CellLib:
    """Per cell: ``pins`` {pin: direction}, ``funcs`` {output pin: (inputs, truth table)} where an input
    named ``@state`` is the flip-flop state, and ``ff`` (next-state inputs, truth table) or None."""
    cells: dict
    name: str = ""

    @classmethod
    def read(cls, lib: Path) -> CellLib:
        text = Path(lib).read_text(errors="replace")
        parts = re.split(r"\bcell\s*\(\s*\"?([\w$]+)\"?\s*\)", text)
        cells = {}
        for name, body in zip(parts[1::2], parts[2::2]):
            cells[name] = _read_cell(name, body)
        return cls(cells, Path(lib).name)


def _attr(body: str, key: str):
    m = re.search(rf"\b{key}\s*:\s*\"([^\"]*)\"", body) or re.search(rf"\b{key}\s*:\s*([^;\s]+)\s*;", body)
    return m.group(1) if m else None


def _read_cell(name: str, body: str) -> dict:
    info = {"pins": {}, "funcs": {}, "ff": None, "unsupported": None}
    ffm = re.search(r"\b(ff|latch|ff_bank|latch_bank|statetable)\s*\(([^)]*)\)\s*\{([^{}]*)\}", body)
    state_vars = {}
    if ffm:
        kind, vars_, fbody = ffm.group(1), ffm.group(2), ffm.group(3)
        if kind != "ff":
            info["unsupported"] = f"{kind} group"
        else:
            v = [x.strip().strip('"') for x in vars_.split(",")]
            state_vars = {v[0]: 0, v[1]: 1} if len(v) > 1 else {v[0]: 0}
            clk = (_attr(fbody, "clocked_on") or "").replace("(", "").replace(")", "").strip()
            if _attr(fbody, "clear") or _attr(fbody, "preset"):
                info["unsupported"] = "asynchronous clear/preset"
            elif not re.fullmatch(r"[A-Za-z_]\w*", clk):
                info["unsupported"] = f"clocked_on {clk!r} (only a rising-edge clock pin)"
            else:
                ast, ins = _parse_function(_attr(fbody, "next_state") or "")
                if len(ins) > MAX_INPUTS:
                    info["unsupported"] = f"next_state with {len(ins)} inputs"
                else:
                    info["ff"] = (ins, _truth_table(ast, ins), clk)
    segs = re.split(r"\bpin\s*\(\s*\"?([\w\[\]]+)\"?\s*\)", body)
    for pin, pbody in zip(segs[1::2], segs[2::2]):
        d = re.search(r"\bdirection\s*:\s*\"?(\w+)", pbody)  # sky130's Liberty quotes it: direction : "output"
        info["pins"][pin] = d.group(1) if d else None
        if d is None:  # a pin read without its direction would drop the cell's function silently (no toggles)
            info["unsupported"] = info["unsupported"] or f"pin {pin} without a readable direction"
        if d and d.group(1) == "output":
            if re.search(r"\bthree_state\s*:", pbody):
                info["unsupported"] = info["unsupported"] or f"three-state pin {pin}"
                continue
            f = _attr(pbody, "function")
            if f is None:
                continue
            ast, ins = _parse_function(f)
            ins = ["@state" if x in state_vars else x for x in ins]
            if any(x == "@state" for x in ins):
                # a function of the state (Q = IQ, QN = IQN) and possibly input pins
                pins_in = [x for x in dict.fromkeys(ins)]

                def fn(idx, ast=ast, pins_in=pins_in):
                    env = {}
                    for k, n in enumerate(pins_in):
                        env[n] = (idx >> k) & 1
                    s = env.pop("@state", 0)
                    for sv, inv in state_vars.items():
                        env[sv] = s ^ inv
                    return _eval(ast, env)

                tt = sum(1 << idx for idx in range(1 << len(pins_in)) if fn(idx))
                info["funcs"][pin] = (pins_in, tt)
            else:
                if len(ins) > MAX_INPUTS:
                    info["unsupported"] = f"function of {len(ins)} inputs on {pin}"
                    continue
                info["funcs"][pin] = (ins, _truth_table(ast, ins))
    return info


# ---------------------------------------------------------------------------- netlist compilation
_BIT = re.compile(r"^([\w$\\.]+)\s*\[(\d+)\]$")
_CONST = re.compile(r"^(\d+)'([bh])([0-9a-fA-FxXzZ_]+)$")


def _bits_of(expr: str, widths: dict) -> list:
    """Bit names (LSB first) of a netlist expression: ``net``, ``net[3]``, ``net[7:4]``,
    ``{a, b}``, ``2'b01`` (constants give ``"0"``/``"1"``/``"x"``)."""
    e = expr.strip()
    if e.startswith("{") and e.endswith("}"):
        parts, depth, cur = [], 0, ""
        for ch in e[1:-1]:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        parts.append(cur)
        out = []
        for p in reversed(parts):  # the last part is the LSB
            out += _bits_of(p, widths)
        return out
    m = _CONST.match(e)
    if m:
        w, base, digits = int(m.group(1)), m.group(2), m.group(3).replace("_", "")
        if base == "h":
            bits = "".join(format(int(c, 16), "04b") if c not in "xXzZ" else "xxxx" for c in digits)
        else:
            bits = digits
        bits = bits[-w:].rjust(w, bits[0] if bits and bits[0] in "xXzZ" else "0")
        return ["x" if b in "xXzZ" else b for b in reversed(bits)]
    m = re.match(r"^([\w$\\.]+)\s*\[(\d+):(\d+)\]$", e)
    if m:
        msb, lsb = int(m.group(2)), int(m.group(3))
        step = 1 if msb >= lsb else -1
        return [f"{m.group(1)}[{i}]" for i in range(lsb, msb + step, step)]
    if _BIT.match(e):
        return [re.sub(r"\s+", "", e)]
    w = widths.get(e)
    if w is None or w == 1:
        return [e]
    return [f"{e}[{i}]" for i in range(w)]


@dataclass
class Compiled:
    """A netlist ready for :func:`simulate_fast` (arrays for the Numba kernel) and its net names."""
    top: str
    names: list  # net id -> name (real nets first; then constants and flip-flop states)
    n_real: int
    inputs: dict  # port -> list of net ids, LSB first
    clk: int  # net id of the clock port, -1 if none
    g_out: np.ndarray
    g_in: np.ndarray
    g_nin: np.ndarray
    g_tt: np.ndarray
    f_state: np.ndarray
    f_in: np.ndarray
    f_nin: np.ndarray
    f_tt: np.ndarray
    const1: int
    level: np.ndarray  # per net: cells from the nearest register output / input port (constants 0)
    driver_cell: dict = field(default_factory=dict)  # net name -> cell type driving it
    digest: str = ""


def compile_netlist(netlist_path: Path, liberty: Path, clock: str = "clk") -> Compiled:
    """Parse ``mapped.v`` and the Liberty file into levelised truth-table gates (HdlError on anything
    the zero-delay evaluator cannot model: latches, three-state, async clear/preset, loops)."""
    from .gatesim import parse_netlist

    netlist_path = Path(netlist_path)
    text = netlist_path.read_text()
    nl = parse_netlist(netlist_path)
    lib = CellLib.read(liberty)
    widths = {}
    for m in re.finditer(r"^\s*(?:wire|input|output|reg)\s+(?:\[(\d+):(\d+)\]\s+)?([\w$\\.]+)\s*;", text, re.M):
        widths[m.group(3)] = abs(int(m.group(1)) - int(m.group(2))) + 1 if m.group(1) else 1
    ids: dict = {}
    names: list = []

    def nid(name: str) -> int:
        i = ids.get(name)
        if i is None:
            i = ids[name] = len(names)
            names.append(name)
        return i

    for pname, _d, w in nl.ports:
        for b in _bits_of(pname, {pname: w}):
            nid(b)
    for wname in widths:
        for b in _bits_of(wname, widths):
            nid(b)
    # assign statements: aliases (lhs bit driven by rhs bit / constant)
    alias = {}
    for m in re.finditer(r"^\s*assign\s+(.+?)\s*=\s*(.+?)\s*;", text, re.M):
        lhs, rhs = _bits_of(m.group(1), widths), _bits_of(m.group(2), widths)
        if len(lhs) != len(rhs):
            raise HdlError(f"{netlist_path}: assign {m.group(0).strip()!r} has unequal widths")
        for a, b in zip(lhs, rhs):
            alias[a] = b
    n_real = len(names)
    c0, c1, cx = nid("@const0"), nid("@const1"), nid("@constx")

    def source(bit: str) -> int:
        bit = re.sub(r"\s+", "", bit)
        if _CONST.match(bit):
            bits = _bits_of(bit, widths)
            if len(bits) != 1:
                raise HdlError(f"{netlist_path}: constant {bit!r} on a one-bit pin")
            bit = bits[0]
        seen = 0
        while bit in alias and seen < 1000:
            bit, seen = alias[bit], seen + 1
        if bit == "x":
            return cx
        if bit == "0":
            return c0
        if bit == "1":
            return c1
        return nid(bit)

    inputs = {n: [ids[b] for b in _bits_of(n, {n: w})] for n, w in nl.inputs}
    clk = ids.get(clock, -1)
    gates = []  # (out id, [in ids], tt, cell)
    flops = []  # (state id, [in ids], tt)
    driver_cell = {}
    bad = {}
    for inst in nl.instances:
        cell = lib.cells.get(inst.cell)
        if cell is None:
            raise HdlError(f"cell {inst.cell} ({inst.name}) is not in {lib.name}")
        if cell["unsupported"]:
            bad.setdefault(f"{inst.cell}: {cell['unsupported']}", inst.name)
            continue
        state = None
        if cell["ff"]:
            ins, tt, clkpin = cell["ff"]
            cnet = inst.pins.get(clkpin)
            if cnet is None or source(cnet) != clk:
                raise HdlError(f"flip-flop {inst.name} ({inst.cell}) is clocked by {cnet!r}, not by the clock "
                               f"port {clock!r}: the cycle-based evaluator has one clock")
            state = nid(f"@state:{inst.name}")
            flops.append((state, [source(inst.pins[p]) for p in ins], tt))
        for pin, (ins, tt) in cell["funcs"].items():
            onet = inst.pins.get(pin)
            if onet is None or _CONST.match(onet):
                continue
            out = _bits_of(onet, widths)
            if len(out) != 1:
                raise HdlError(f"{inst.name}.{pin} connects to {onet!r}, not one bit")
            ob = out[0]
            if ob in alias:
                raise HdlError(f"net {ob} is driven by {inst.name} and by an assign")
            o = nid(ob)
            src = []
            for p in ins:
                if p == "@state":
                    src.append(state)
                else:
                    if p not in inst.pins:
                        raise HdlError(f"{inst.name} ({inst.cell}) leaves input pin {p} unconnected")
                    src.append(source(inst.pins[p]))
            if clk >= 0 and clk in src:
                raise HdlError(f"{inst.name} ({inst.cell}) uses the clock {clock!r} as data")
            gates.append((o, src, tt, inst.cell))
            driver_cell[ob] = inst.cell
    if bad:
        k, v = next(iter(bad.items()))
        raise HdlError(f"the zero-delay evaluator cannot model {k} (instance {v}); "
                       "supported: combinational cells and rising-edge flip-flops without clear/preset")
    # aliased real nets (assign a = b): evaluated as buffers so that both names carry the toggles
    for a, _b in alias.items():
        if a in ids and a not in driver_cell:
            s = source(a)
            if s not in (c0, c1, cx):
                gates.append((ids[a], [s], 0b10, "assign"))
    # levelise (Kahn): sources are inputs, constants, flip-flop states
    n = len(names)
    driven = np.full(n, -1, np.int64)
    for gi, (o, _, _, _) in enumerate(gates):
        if driven[o] >= 0:
            raise HdlError(f"net {names[o]} has two drivers")
        driven[o] = gi
    indeg = np.zeros(len(gates), np.int64)
    users: list = [[] for _ in range(n)]
    for gi, (_, src, _, _) in enumerate(gates):
        for s in set(src):
            if driven[s] >= 0:
                indeg[gi] += 1
                users[s].append(gi)
    level = np.zeros(n, np.int32)
    order = [gi for gi in range(len(gates)) if indeg[gi] == 0]
    k = 0
    while k < len(order):
        gi = order[k]
        k += 1
        o, src, _, _ = gates[gi]
        level[o] = 1 + max((int(level[s]) for s in src), default=0)
        for u in users[o]:
            indeg[u] -= 1
            if indeg[u] == 0:
                order.append(u)
    if len(order) != len(gates):
        stuck = [names[gates[g][0]] for g in range(len(gates)) if indeg[g] > 0][:3]
        raise HdlError(f"{nl.top}: combinational loop through {stuck}")
    G, F = len(gates), len(flops)
    g_out = np.array([gates[g][0] for g in order], np.int32)
    g_in = np.zeros((G, MAX_INPUTS), np.int32)
    g_nin = np.zeros(G, np.int32)
    g_tt = np.zeros(G, np.uint64)
    for r, g in enumerate(order):
        _, src, tt, _ = gates[g]
        g_in[r, :len(src)] = src
        g_nin[r] = len(src)
        g_tt[r] = tt
    f_state = np.array([f[0] for f in flops], np.int32)
    f_in = np.zeros((F, MAX_INPUTS), np.int32)
    f_nin = np.zeros(F, np.int32)
    f_tt = np.zeros(F, np.uint64)
    for j, (_, src, tt) in enumerate(flops):
        f_in[j, :len(src)] = src
        f_nin[j] = len(src)
        f_tt[j] = tt
    h = hashlib.sha256(text.encode() + Path(liberty).read_bytes()).hexdigest()[:16]
    return Compiled(nl.top, names, n_real, inputs, clk, g_out, g_in, g_nin, g_tt, f_state, f_in, f_nin, f_tt,
                    c1, level, driver_cell, h)


# ---------------------------------------------------------------------------- the kernel
def _kernel():
    from numba import njit

    @njit(cache=True, nogil=True, inline="always")
    def _eval3(tt, idx, xm):
        """Truth-table lookup with unknown inputs ``xm``: (value, known) - known when every completion of
        the unknown inputs gives the same value (as Verilog primitives resolve X)."""
        v = (tt >> np.uint64(idx)) & np.uint64(1)
        if xm == 0:
            return np.uint8(v), np.uint8(1)
        sub = xm
        while True:
            if ((tt >> np.uint64(idx | sub)) & np.uint64(1)) != v:
                return np.uint8(0), np.uint8(0)
            if sub == 0:
                break
            sub = (sub - 1) & xm
        return np.uint8(v), np.uint8(1)

    @njit(cache=True, nogil=True)
    def run(val, kn, in_ids, in_bits, clk, g_out, g_in, g_nin, g_tt, f_state, f_in, f_nin, f_tt, warm, count):
        rows = in_bits.shape[0]
        nf = f_state.shape[0]
        nxt = np.zeros(nf, np.uint8)
        nkn = np.zeros(nf, np.uint8)
        for r in range(rows):
            counting = r >= warm
            for phase in range(2):
                if phase == 0:
                    if clk >= 0:
                        if kn[clk] and val[clk] != 0 and counting:
                            count[clk] += 1
                        val[clk] = 0
                        kn[clk] = 1
                    for p in range(in_ids.shape[0]):
                        v = in_bits[r, p]
                        q = in_ids[p]
                        if kn[q] and val[q] != v and counting:
                            count[q] += 1
                        val[q] = v
                        kn[q] = 1
                else:
                    for j in range(nf):
                        idx = 0
                        xm = 0
                        for k in range(f_nin[j]):
                            i = f_in[j, k]
                            if kn[i]:
                                idx |= np.int64(val[i]) << k
                            else:
                                xm |= np.int64(1) << k
                        nxt[j], nkn[j] = _eval3(f_tt[j], idx, xm)
                    for j in range(nf):
                        val[f_state[j]] = nxt[j]
                        kn[f_state[j]] = nkn[j]
                    if clk >= 0:
                        if kn[clk] and val[clk] != 1 and counting:
                            count[clk] += 1
                        val[clk] = 1
                        kn[clk] = 1
                for g in range(g_out.shape[0]):
                    idx = 0
                    xm = 0
                    for k in range(g_nin[g]):
                        i = g_in[g, k]
                        if kn[i]:
                            idx |= np.int64(val[i]) << k
                        else:
                            xm |= np.int64(1) << k
                    v, known = _eval3(g_tt[g], idx, xm)
                    o = g_out[g]
                    if known:
                        if kn[o] and val[o] != v and counting:
                            count[o] += 1
                        val[o] = v
                        kn[o] = 1
                    else:
                        kn[o] = 0
        return 0

    return run


_RUN = None


def stim_bits(c: Compiled, stim: dict) -> tuple[np.ndarray, np.ndarray]:
    """(input net ids, bits[rows, ids]) from ``{port: ints per row}`` or ``{port: bits[rows, width]}``."""
    ports = [p for p in c.inputs if c.inputs[p] and c.inputs[p][0] != c.clk]
    missing = [p for p in ports if p not in stim]
    extra = sorted(set(stim) - set(ports))
    if missing or extra:
        raise HdlError(f"stimulus for {c.top}: missing ports {missing}, unknown ports {extra}; inputs are {ports}")
    rows = {len(v) for v in stim.values()}
    if len(rows) != 1:
        raise HdlError(f"stimulus columns have different lengths {sorted(rows)}")
    n = rows.pop()
    ids, cols = [], []
    for p in ports:
        w = len(c.inputs[p])
        v = stim[p]
        if isinstance(v, np.ndarray) and v.ndim == 2:
            if v.shape[1] != w:
                raise HdlError(f"stimulus {p} has {v.shape[1]} bit columns, the port is {w} bits")
            b = (v != 0).astype(np.uint8)
        else:
            vals = [int(x) for x in v]
            if any(x < 0 or x >> w for x in vals):
                raise HdlError(f"stimulus {p} has a value that does not fit its {w} bits")
            if w <= 63:
                arr = np.asarray(vals, np.int64)
                b = ((arr[:, None] >> np.arange(w)) & 1).astype(np.uint8)
            else:
                b = np.array([[(x >> k) & 1 for k in range(w)] for x in vals], np.uint8).reshape(n, w)
        ids += c.inputs[p]
        cols.append(b)
    bits = np.concatenate(cols, axis=1) if cols else np.zeros((n, 0), np.uint8)
    return np.asarray(ids, np.int32), np.ascontiguousarray(bits)


def simulate_fast(compiled: Compiled, stim: dict, warmup: int):
    """Toggle counts like :func:`rf8sim.hdl.gatesim.simulate` with ``specify=False``, without Icarus:
    a :class:`~rf8sim.hdl.gatesim.GateSim` over the rows after ``warmup``."""
    global _RUN
    from .gatesim import GateSim

    c = compiled
    ids, bits = stim_bits(c, stim)
    if bits.shape[0] <= warmup:
        raise HdlError(f"stimulus has {bits.shape[0]} rows, needs more than the {warmup} warm-up rows")
    if _RUN is None:
        _RUN = _kernel()
    val = np.zeros(len(c.names), np.uint8)
    val[c.const1] = 1
    kn = np.zeros(len(c.names), np.uint8)  # nets and flip-flops start unknown (X), as in Icarus
    kn[c.const1] = kn[c.const1 - 1] = 1
    count = np.zeros(len(c.names), np.int64)
    _RUN(val, kn, ids, bits, c.clk, c.g_out, c.g_in, c.g_nin, c.g_tt, c.f_state, c.f_in, c.f_nin, c.f_tt,
         warmup, count)
    toggles = {c.names[i]: int(count[i]) for i in range(c.n_real)}
    return GateSim(toggles, int(bits.shape[0] - warmup), 0.0, False, 0)


def net_levels(c: Compiled) -> dict:
    """Net name -> logic level (cells from the nearest register output or input port)."""
    return {c.names[i]: int(c.level[i]) for i in range(c.n_real)}


# ---------------------------------------------------------------------------- glitch model
def _bin(level: int) -> int:
    return int(np.searchsorted(LEVEL_BINS, level, side="right") - 1)


@dataclass
class GlitchModel:
    """Multiply a cell output's zero-delay toggles by ``factor[bin(level)]`` (per :data:`LEVEL_BINS`)."""
    factors: list
    bins: tuple = LEVEL_BINS

    def apply(self, toggles: dict, levels: dict) -> dict:
        f = self.factors
        return {n: t * (f[_bin(levels.get(n, 0))] if levels.get(n, 0) > 0 else 1.0) for n, t in toggles.items()}

    def to_json(self) -> dict:
        return {"bins": list(self.bins[:-1]), "factors": list(self.factors)}


def fit_glitch(units: list) -> GlitchModel:
    """Energy-weighted per-bin ratio sum(w d) / sum(w z) over cell outputs of ``units`` (each
    ``{"weights": {net: J per toggle}, "zero": {net: toggles}, "delay": {...}, "levels": {...}}``);
    an empty bin takes the nearest lower non-empty bin's factor (1 below the first)."""
    nb = len(LEVEL_BINS) - 1
    num, den = np.zeros(nb), np.zeros(nb)
    for u in units:
        for net, w in u["weights"].items():
            lv = u["levels"].get(net, 0)
            if lv <= 0:
                continue
            b = _bin(lv)
            num[b] += w * u["delay"].get(net, 0)
            den[b] += w * u["zero"].get(net, 0)
    f, last = [], 1.0
    for b in range(nb):
        if den[b] > 0:
            last = float(num[b] / den[b])
        f.append(last)
    return GlitchModel(f)


def net_weights(netlist, lib_pins: dict, energies: dict) -> dict:
    """Net -> energy (J) per toggle charged to it by :func:`rf8sim.hdl.power.energy_from_toggles`
    (internal + switching of the driving cell's output; flip-flop D/Q halves)."""
    w: dict = {}
    inst_e = energies["instances"]
    for inst in netlist.instances:
        pins = lib_pins[inst.cell]
        e = inst_e.get(inst.name)
        if e is None:
            continue
        outs = [p for p, (d, _) in pins.items() if d == "output" and p in inst.pins]
        ins = [p for p, (d, _) in pins.items() if d == "input" and p in inst.pins and p != "CLK"]
        is_ff = "CLK" in pins
        for p in outs:
            share = e["sw_j"] / len(outs) + e["int_j"] / len(outs) * (0.5 if is_ff and ins else 1.0)
            w[inst.pins[p]] = w.get(inst.pins[p], 0.0) + share
        if is_ff and ins:
            for p in ins:
                w[inst.pins[p]] = w.get(inst.pins[p], 0.0) + 0.5 * e["int_j"] / len(ins)
    return w


def dynamic_pj(weights: dict, toggles: dict, cycles: int) -> float:
    """Data-dependent energy per cycle (pJ): sum of net weight x toggles / cycles."""
    return sum(w * toggles.get(n, 0) for n, w in weights.items()) / cycles * 1e12


# ---------------------------------------------------------------------------- calibration
#: the MAC units the glitch model is fitted on: (a, w, acc, lanes)
CALIBRATION_UNITS = (("rf8", "rf8", "16:32", 1), ("e4m3", "e4m3", "16:32", 1), ("int8", "int8", "16:32", 1),
                     ("rf8", "int8", "16:32", 1), ("rf8", "rf8", "exact", 4), ("bf16", "rf8", "fp32", 1),
                     ("bf16", "int8", "fp32", 1), ("bf16", "bf16", "fp32", 1), ("bf16", "rf8", "aligned:32:16", 1))


def unit_run(a, w, acc, lanes, beats: int = 1000, stream: str = "minilm", tile: int = 32, seed: int = 0,
             clock_ns: float = 10.0, progress: bool = False) -> dict:
    """One calibration unit: synthesis, cell energies, the Icarus delay-annotated and zero-delay
    toggles, and this module's zero-delay toggles (with run times)."""
    from .gatesim import parse_netlist, simulate
    from .power import PRE_BEATS, stimulus
    from .sta import cell_energies, liberty_pins, timing
    from .streams import make_stream
    from .synth import synthesize

    r = synthesize(a, w, acc, lanes, None, "mac")
    work = Path(r["workdir"])
    netp, libp = work / "mapped.v", work / "cells.lib"
    nl = parse_netlist(netp)
    tim = timing(libp, netp, nl.top, clock_ns)
    en = cell_energies(libp, netp, nl.top, clock_ns)
    pins = liberty_pins(libp)
    lanes_eff = r["config"]["lanes"]
    st = make_stream(stream, r["config"]["a_fmt"], r["config"]["w_fmt"], lanes_eff, beats + PRE_BEATS, tile, seed)
    stim = stimulus(nl, st)
    warm = 2 + PRE_BEATS
    out = {"module": nl.top, "a_fmt": a, "w_fmt": w, "acc": acc, "lanes": lanes, "cells": len(nl.instances),
           "area_um2": r["liberty"]["area_um2"], "critical_path_ns": tim["critical_path_ns"], "beats": beats}
    t0 = time.perf_counter()
    gd = simulate(netp, stim, warm, period_ns=max(20.0, 2 * tim["critical_path_ns"]), specify=True,
                  workdir=work / "cal-delay")
    out["icarus_delay_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    gz = simulate(netp, stim, warm, period_ns=max(20.0, 2 * tim["critical_path_ns"]), specify=False,
                  workdir=work / "cal-zero")
    out["icarus_zero_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    comp = compile_netlist(netp, libp)
    out["compile_s"] = time.perf_counter() - t0
    simulate_fast(comp, {k: v[:warm + 1] for k, v in stim.items()}, warm)  # JIT warm-up, not timed
    t0 = time.perf_counter()
    gf = simulate_fast(comp, stim, warm)
    out["fast_s"] = time.perf_counter() - t0
    out["weights"] = net_weights(nl, pins, en)
    out["levels"] = net_levels(comp)
    out["zero"], out["delay"], out["fast"] = gz.toggles, gd.toggles, gf.toggles
    out["cycles"] = gf.cycles
    out["static_pj"] = sum(e["clock_int_j"] + e["leak_w"] * clock_ns * 1e-9 for e in en["instances"].values()) * 1e12
    return out


def refresh_fast(u: dict, beats: int, stream: str, tile: int = 32, seed: int = 0) -> dict:
    """Recompute a cached :func:`unit_run`'s fast toggles (the Icarus runs stay cached)."""
    from .gatesim import parse_netlist
    from .power import PRE_BEATS, stimulus
    from .streams import make_stream
    from .synth import synthesize

    r = synthesize(u["a_fmt"], u["w_fmt"], u["acc"], u["lanes"], None, "mac")
    work = Path(r["workdir"])
    netp = work / "mapped.v"
    st = make_stream(stream, r["config"]["a_fmt"], r["config"]["w_fmt"], r["config"]["lanes"], beats + PRE_BEATS,
                     tile, seed)
    stim = stimulus(parse_netlist(netp), st)
    warm = 2 + PRE_BEATS
    t0 = time.perf_counter()
    comp = compile_netlist(netp, work / "cells.lib")
    u["compile_s"] = time.perf_counter() - t0
    simulate_fast(comp, {k: v[:warm + 1] for k, v in stim.items()}, warm)  # JIT warm-up, not timed
    t0 = time.perf_counter()
    g = simulate_fast(comp, stim, warm)
    u["fast_s"] = time.perf_counter() - t0
    u["fast"], u["cycles"], u["levels"] = g.toggles, g.cycles, net_levels(comp)
    return u


def calibrate(runs: list) -> dict:
    """The calibration record's payload from :func:`unit_run` results: the glitch model fitted on all
    units, and per unit the exactness of the fast counts and the leave-one-out energy error."""
    model = fit_glitch(runs)
    rows = []
    for i, u in enumerate(runs):
        cells_nets = set(u["weights"])
        mism = sum(1 for n in set(u["zero"]) | set(u["fast"]) if u["zero"].get(n, 0) != u["fast"].get(n, 0))
        compared = len(set(u["zero"]) | set(u["fast"]))
        loo = fit_glitch([v for j, v in enumerate(runs) if j != i]) if len(runs) > 1 else model
        cyc = u["cycles"]
        e_delay = dynamic_pj(u["weights"], u["delay"], cyc)
        e_zero = dynamic_pj(u["weights"], u["fast"], cyc)
        e_model = dynamic_pj(u["weights"], model.apply(u["fast"], u["levels"]), cyc)
        e_loo = dynamic_pj(u["weights"], loo.apply(u["fast"], u["levels"]), cyc)
        glob = _global_factor([v for j, v in enumerate(runs) if j != i])
        e_glob = e_zero * glob
        tot_d = e_delay + u["static_pj"]
        rows.append({
            "module": u["module"], "a_fmt": u["a_fmt"], "w_fmt": u["w_fmt"], "acc": u["acc"], "lanes": u["lanes"],
            "cells": u["cells"], "cycles": cyc, "nets_compared": compared, "nets_mismatched": mism,
            "cell_output_nets": len(cells_nets),
            "icarus_delay_s": u["icarus_delay_s"], "icarus_zero_s": u["icarus_zero_s"], "fast_s": u["fast_s"],
            "compile_s": u["compile_s"],
            "dynamic_pj_delay": e_delay, "dynamic_pj_zero": e_zero, "dynamic_pj_model": e_model,
            "dynamic_pj_loo": e_loo, "dynamic_pj_global_loo": e_glob, "static_pj": u["static_pj"],
            "glitch_ratio": e_delay / e_zero if e_zero else None,
            "err_zero_pct": 100 * (e_zero + u["static_pj"] - tot_d) / tot_d,
            "err_model_pct": 100 * (e_model + u["static_pj"] - tot_d) / tot_d,
            "err_loo_pct": 100 * (e_loo + u["static_pj"] - tot_d) / tot_d,
            "err_global_loo_pct": 100 * (e_glob + u["static_pj"] - tot_d) / tot_d,
        })
    return {"kind": "hdl-activity-calibration", "model": model.to_json(), "global_factor": _global_factor(runs),
            "rows": rows}


def _global_factor(units: list) -> float:
    num = sum(dynamic_pj(u["weights"], u["delay"], u["cycles"]) for u in units)
    den = sum(dynamic_pj(u["weights"], u["fast"], u["cycles"]) for u in units)
    return num / den if den else 1.0


def load_glitch_model(path: Path | None = None) -> GlitchModel:
    """The glitch model of the checked-in calibration record."""
    p = Path(path) if path else CALIBRATION_RECORD
    if not p.exists():
        raise HdlError(f"no activity calibration record at {p}: run `python -m rf8sim.hdl.activity --record {p}`")
    m = json.loads(p.read_text())["model"]
    return GlitchModel(list(m["factors"]), tuple(m["bins"]) + (10**9,))


ACT_VERSION = 2


def _cal_job(job, beats, stream):
    a, w, acc, lanes = job
    return unit_run(a, w, acc, lanes, beats=beats, stream=stream)


def run_calibration(units=CALIBRATION_UNITS, beats: int = 1000, stream: str = "minilm", cluster: str = "local",
                    workers: int = 1, use_cache: bool = True, progress: bool = True) -> list:
    """:func:`unit_run` of every calibration unit through :func:`rf8sim.infra.cluster.run_tasks` (cached by
    unit, beats, stream and :data:`ACT_VERSION`)."""
    import functools

    from ..infra import cache
    from ..infra.cluster import Resources, run_tasks

    jobs = [tuple(u) for u in units]
    keys = [cache.content_hash("activity-cal", j, beats, stream, ACT_VERSION) for j in jobs] if use_cache else None
    return run_tasks(functools.partial(_cal_job, beats=beats, stream=stream), jobs, keys=keys, kind="activity",
                     cluster=cluster, workers=workers, resources=Resources(num_cpus=1, tools=("yosys",)),
                     labels=[f"activity {a}x{w} {acc} lanes {n}" for a, w, acc, n in jobs], progress=progress,
                     desc="calibrate")


def main(argv=None) -> int:
    import argparse

    from ..infra.records import write_record

    ap = argparse.ArgumentParser(prog="python -m rf8sim.hdl.activity",
                                 description="calibrate the zero-delay activity method against Icarus with delays")
    ap.add_argument("--record", help="write the calibration record here (e.g. hdl/results/activity_calibration.json)")
    ap.add_argument("--beats", type=int, default=1000)
    ap.add_argument("--stream", default="minilm")
    ap.add_argument("--cluster", default="local")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    if args.record:
        from ..infra.fileio import check_output_path

        check_output_path(args.record, args.force)
    runs = run_calibration(beats=args.beats, stream=args.stream, cluster=args.cluster, workers=args.workers)
    runs = [refresh_fast(u, args.beats, args.stream) for u in runs]  # this module's counts, never cached
    payload = calibrate(runs)
    payload.update(beats=args.beats, stream=args.stream, level_bins=list(LEVEL_BINS[:-1]))
    for r in payload["rows"]:
        print(f"{r['module']:36s} cells {r['cells']:6d} mism {r['nets_mismatched']}/{r['nets_compared']} "
              f"glitch x{r['glitch_ratio']:.2f} err zero {r['err_zero_pct']:+.1f}% model {r['err_model_pct']:+.1f}% "
              f"loo {r['err_loo_pct']:+.1f}% global-loo {r['err_global_loo_pct']:+.1f}%  "
              f"icarus {r['icarus_delay_s']:.1f}s fast {r['fast_s']:.2f}s")
    print("factors", [round(x, 2) for x in payload["model"]["factors"]])
    if args.record:
        import sys

        write_record(args.record, payload, overwrite=args.force,
                     command=["python", "-m", "rf8sim.hdl.activity", *sys.argv[1:]])
        print(f"wrote {args.record}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# ---------------------------------------------------------------------------- docs
def render_calibration() -> str:
    """The fast activity method against Icarus, per calibration unit (record activity_calibration.json)."""
    from ..infra.docgen import load_record, record_head

    rec = load_record("hdl/results/activity_calibration.json", "hdl-activity-calibration",
                      "python -m rf8sim.hdl.activity --record hdl/results/activity_calibration.json")
    prov = rec["provenance"]
    rows = rec["rows"]
    lines = [record_head(prov) + f", stream `{rec['stream']}`, {rec['beats']} beats per unit. "
             "Energy = data-dependent + clock-pin + leakage, per cycle, on the same OpenSTA cell energies; "
             "error against Icarus with cell delays.", "",
             "| unit | cells | nets: equal / compared (zero-delay) | Icarus delays / zero-delay energy | "
             "error: zero-delay alone | level model | level model, unit left out | one global factor, "
             "unit left out | Icarus s (delays) | fast s (compile + run) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = r["acc"]
        lines.append(
            f"| {r['a_fmt']} × {r['w_fmt']} {acc}, lanes {r['lanes']} | {r['cells']} | "
            f"{r['nets_compared'] - r['nets_mismatched']} / {r['nets_compared']} | "
            f"{r['glitch_ratio']:.2f} | {r['err_zero_pct']:+.1f} % | {r['err_model_pct']:+.1f} % | "
            f"{r['err_loo_pct']:+.1f} % | {r['err_global_loo_pct']:+.1f} % | {r['icarus_delay_s']:.1f} | "
            f"{r['fast_s'] + r['compile_s']:.2f} |")
    loo = [r["err_loo_pct"] for r in rows]
    glob = [r["err_global_loo_pct"] for r in rows]
    eq = sum(r["nets_compared"] - r["nets_mismatched"] for r in rows)
    tot = sum(r["nets_compared"] for r in rows)
    cyc = sum(r["cycles"] * r["cells"] for r in rows)
    fast = sum(r["fast_s"] + r["compile_s"] for r in rows)
    speed = sum(r["icarus_delay_s"] for r in rows) / fast
    f = rec["model"]
    lines += ["", "Level model (factor on a cell output's zero-delay toggles, per logic-level bin, fitted on "
              "all units above): " + ", ".join(f"level ≥ {b}: ×{x:.2f}" for b, x in zip(f["bins"], f["factors"])
                                                if b > 0) + ".", "",
              f"Over these {len(rows)} units: the fast zero-delay counts equal Icarus's zero-delay counts on "
              f"{eq} of {tot} nets; with each unit left out of the fit, the level model's energy error lies "
              f"between {min(loo):+.1f} % and {max(loo):+.1f} % (rms "
              f"{float(np.sqrt(np.mean(np.square(loo)))):.1f} %), one global glitch factor's between "
              f"{min(glob):+.1f} % and {max(glob):+.1f} % (rms {float(np.sqrt(np.mean(np.square(glob)))):.1f} %); "
              f"the fast method ran {speed:.0f}x faster than Icarus with delays "
              f"({cyc / fast / 1e6:.1f} M cell-cycles/s, netlist compilation included)."]
    return "\n".join(lines) + "\n"
