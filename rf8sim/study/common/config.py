"""The study configuration: one TOML file describes a model, a sweep grid and how to run it.

Schema (every key optional except where noted; unknown keys are errors so that a typo
never silently falls back to a default)::

    [study]
    name = "small"              # used in titles and the default output folder
    seed = 0
    workers = 2                 # local parallel jobs; 1 runs in-process
    cluster = "local"           # local | auto | ray://HOST:PORT | HOST:PORT (rf8sim.infra.cluster)
    max_terms = 1024            # "exact" accumulators are exact for this many products
    tolerance = 0.01            # "iso-accuracy": cheapest MAC within this of the float32 accuracy

    [model]
    task = "mnist1d"            # the only task with a bit-exact inference path so far
    arch = "mlp"
    hidden = [64, 64]
    epochs = 8
    batch_size = 128
    lr = 0.01
    init = "gg"                 # "gg" (GG initialization) or "default" (torch's)
    gg_shape = 1.0
    backslash = 0.0             # BackSlash lambda; 0 turns it off
    backslash_epochs = 0        # epochs (from the start) with BackSlash active
    deepshape = false
    finetune_epochs = 1         # after DeepShape
    n_samples = 5000            # MNIST-1D samples generated (80 % train, 20 % test)
    eval_samples = 1000         # test samples evaluated through the bit-exact path

    [sweep]
    formats = ["rf8", "e4m3", "int8"]     # weight formats (registered names, variants included)
    act_formats = "same"                  # "same" (activation format = weight format) or a list
    roundings = ["nearest", "paper", "truncate"]   # weight rounding; non-RF8 formats use nearest
    granularities = ["tensor", "channel", "block"]
    block = 32
    acc = ["exact", "4:30"]               # AccSpec syntax: exact, exact:TERMS or FRAC:WIDTH
    lanes = [1]                           # MAC lanes: area only

    [flow]                      # only `rf8sim flow` reads this section
    macs = ["rf8xrf8", "bf16xrf8@fp32"]   # MACs generated, verified and synthesized: 'AxW' (8-bit, exact
                                # accumulator) or 'AxW@ACC' (W8A16 unit: bf16/fp16 activations, fp32 or aligned:K:M)
    verify_sequences = 200      # random accumulation sequences per MAC (plus all 65,536 products)
    verify_max_len = 64         # their maximum length
    hist_layers = 3             # weight histograms in the report
    arrays = []                 # PE arrays generated and verified on a real MiniLM tile (Icarus), 'AxW@ACC',
                                # e.g. ["bf16xrf8@aligned:32:16", "bf16xbf16@fp32"]; per-inference
                                # costs from hdl/results/array_cost.json
    array_synth = []            # those of `arrays` also synthesized in the run (area, fmax)
    array_size = "2x2"          # RxC of those arrays
    array_depth = 4             # accumulator entries per column
    array_edge_stages = 0       # 1: the registered fp32 edge adder (rf8sim.hdl.array.EDGE_STAGES)

    [transformer]               # only `rf8sim flow` reads this section (stage "transformer")
    model = "none"              # "minilm": all-MiniLM-L6-v2 bit-exact (the demo's default); "none": off
    sentences = 1000            # real sentences from pydoc_data.topics (5..32 words)
    min_words = 5
    max_words = 32
    configs = ["rf8", "e4m3", "int8"]   # W[:ROUNDING][/A][@ACC]: "rf8" (weight = activation format),
                                        # "rf8:paper" (weight rounding), "rf8/bf16@fp32" (W8A16)
    granularity = "channel"     # weight scales; activations: per token
    acc = ["exact"]             # AccSpec syntax; "exact" = exact for the longest K (1536); entries
                                # with 16-bit codes take the fp32/aligned:K:M ones (else fp32)
    sensitivity_sentences = 200 # per-layer-group sensitivity scan on the first N sentences
    a16_sentences = 1000        # configs with fp32/aligned:K:M accumulators (W8A16) on the first N only
                                # (their golden kernels cost ~10x the exact 8-bit path per sentence)
    min_cosine = 0.999          # constraint of the mixed-format search (mean cosine to float32)
    batch_size = 64
    bootstrap = 2000            # bootstrap resamples for every interval and paired test
    objectives = ["area", "energy"]  # MAC-weighted costs the mixed search minimises (µm²/MAC, pJ/MAC); a config
                                # without a synthesized or recorded cost is an error (rf8sim.study.minilm.mac_costs)
    torch_check = true          # per layer: the torch emulation gives the same bits

    [tinylm]                    # only `rf8sim flow` reads this section (stage "tinylm")
    model = "none"              # "tinylm": train a byte-level TinyLM on pydoc text, evaluate bit-exactly
    d_model = 64                # model shape (d_model must be a multiple of n_head)
    n_layer = 2
    n_head = 4
    block = 64                  # context = bytes per held-out chunk
    steps = 600                 # training steps (seeded, one thread, cached under the cache root)
    batch_size = 32
    lr = 0.01                   # AdamW peak learning rate (linear warm-up, cosine decay)
    chunks = 256                # held-out chunks (>= 20): the units of the bootstrap and paired tests
    a16_chunks = 64             # configs with fp32/aligned:K:M accumulators (W8A16) on the first N only
    configs = "transformer"     # "transformer": [transformer]'s configs, granularity and acc; or a list
    granularity = "channel"     # (with a list) weight scales; activations: per token
    acc = ["exact"]             # (with a list) AccSpec syntax, as in [transformer]
    bootstrap = 2000
    torch_check = true          # per layer: the torch emulation gives the same bits

    [area]
    mode = "auto"               # auto: synthesize if yosys is there, else skip with a reason;
                                # "required": fail without it; "off": never
    liberty = ""                # a .lib file; empty: the hdl package's default (osu018)

Accuracy depends on (weight format, activation format, rounding, granularity, block,
accumulator); area depends on (activation format, weight format, accumulator, lanes).  The
sweep runs each distinct job once and joins the two tables.
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

__all__ = [
    "ConfigError",
    "StudyConfig",
    "StudySection",
    "ModelSection",
    "SweepSection",
    "AreaSection",
    "FlowSection",
    "TransformerSection",
    "TinyLMSection",
    "load_config",
    "resolve_config",
    "config_from_dict",
    "config_hash",
    "spec_from",
    "GRANULARITIES",
    "study_granularity",
]

GRANULARITIES = ("tensor", "channel", "block")
TASKS = ("mnist1d",)
ARCHS = ("mlp",)
AREA_MODES = ("auto", "required", "off")
#: at least this many TinyLM held-out chunks (bootstrap intervals and paired tests over fewer say little)
TINYLM_MIN_CHUNKS = 20


#: what the MiniLM mixed-format search can minimise besides stored weight bits (rf8sim.study.minilm.mac_costs)
OBJECTIVES = ("area", "energy")

class ConfigError(RF8SimError, ValueError):
    """A study configuration that is malformed; the message names the key and what is valid."""


@dataclass(frozen=True)
class StudySection:
    name: str = "study"
    seed: int = 0
    workers: int = 2
    cluster: str = "local"
    max_terms: int = 1024
    tolerance: float = 0.01


@dataclass(frozen=True)
class ModelSection:
    task: str = "mnist1d"
    arch: str = "mlp"
    hidden: tuple = (64, 64)
    epochs: int = 8
    batch_size: int = 128
    lr: float = 0.01
    init: str = "gg"
    gg_shape: float = 1.0
    backslash: float = 0.0
    backslash_epochs: int = 0
    deepshape: bool = False
    finetune_epochs: int = 1
    n_samples: int = 5000
    eval_samples: int = 1000


@dataclass(frozen=True)
class SweepSection:
    formats: tuple = ("rf8", "e4m3", "int8")
    act_formats: object = "same"
    roundings: tuple = ("nearest", "paper", "truncate")
    granularities: tuple = GRANULARITIES
    block: int = 32
    acc: tuple = ("exact", "4:30")
    lanes: tuple = (1,)


@dataclass(frozen=True)
class AreaSection:
    mode: str = "auto"
    liberty: str = ""


@dataclass(frozen=True)
class FlowSection:
    macs: tuple = ("rf8xrf8", "e4m3xe4m3", "int8xint8")
    verify_sequences: int = 200
    verify_max_len: int = 64
    hist_layers: int = 3
    arrays: tuple = ()
    array_synth: tuple = ()
    array_size: str = "2x2"
    array_depth: int = 4
    array_edge_stages: int = 0


@dataclass(frozen=True)
class TransformerSection:
    model: str = "none"
    sentences: int = 1000
    min_words: int = 5
    max_words: int = 32
    configs: tuple = ("rf8", "e4m3", "int8")
    granularity: str = "channel"
    acc: tuple = ("exact",)
    sensitivity_sentences: int = 200
    a16_sentences: int = 1000
    min_cosine: float = 0.999
    batch_size: int = 64
    bootstrap: int = 2000
    torch_check: bool = True
    objectives: tuple = ("area", "energy")  # what the mixed-format search minimises (rf8sim.study.minilm.mac_costs)


@dataclass(frozen=True)
class TinyLMSection:
    model: str = "none"
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    block: int = 64
    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-2
    chunks: int = 256
    a16_chunks: int = 64
    max_rel_loss: float = 0.001  # accuracy constraint: held-out bits per byte at most this fraction above float32's
    configs: object = "transformer"
    granularity: str = "channel"
    acc: tuple = ("exact",)
    bootstrap: int = 2000
    torch_check: bool = True


@dataclass(frozen=True)
class StudyConfig:
    study: StudySection = field(default_factory=StudySection)
    model: ModelSection = field(default_factory=ModelSection)
    sweep: SweepSection = field(default_factory=SweepSection)
    area: AreaSection = field(default_factory=AreaSection)
    flow: FlowSection = field(default_factory=FlowSection)
    transformer: TransformerSection = field(default_factory=TransformerSection)
    tinylm: TinyLMSection = field(default_factory=TinyLMSection)

    def to_dict(self) -> dict:
        d = asdict(self)
        return json.loads(json.dumps(d))  # tuples -> lists, plain JSON types


# ---------------------------------------------------------------------------
# parsing and validation

def _check_type(section: str, key: str, value, want):
    """Coerce/validate one value against the type of its default."""
    where = f"[{section}] {key}"
    if isinstance(want, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(want, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(want, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(want, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if isinstance(want, tuple):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a scalar where a list is expected: a one-element sweep axis
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where} must be a non-empty list, got {value!r}")
        return tuple(value)
    return value


def _check_arrays(f) -> None:
    """``[flow] arrays``: 'AxW@ACC' entries the array generator builds at ``array_size`` / ``array_depth``."""
    bad = [x for x in f.array_synth if x not in f.arrays]
    if bad:
        raise ConfigError(f"[flow] array_synth {bad[0]!r} is not one of [flow] arrays {list(f.arrays)}")
    if not f.arrays:
        return
    try:
        from ...hdl.array import ArrayConfig, parse_size
        from ...hdl.spec import HdlError
    except ImportError:  # no rf8sim.hdl here: the array stage is skipped and says why
        return
    for entry in f.arrays:
        pair, at, acc = str(entry).lower().partition("@")
        parts = pair.split("x")
        if len(parts) != 2 or not at:
            raise ConfigError(f"[flow] arrays entries are 'AxW@ACC' (e.g. 'bf16xrf8@aligned:32:16', "
                              f"'rf8xrf8@16:32'), got {entry!r}")
        try:
            R, C = parse_size(f.array_size)
            ArrayConfig.make(parts[0], parts[1], acc, R, C, f.array_depth, 1, f.array_edge_stages)
        except HdlError as e:
            raise ConfigError(f"[flow] arrays {entry!r} (array_size {f.array_size}, array_depth {f.array_depth}, "
                              f"array_edge_stages {f.array_edge_stages}): {e}") from None


def _section(cls, section: str, raw) -> object:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}] must be a table, got {type(raw).__name__}")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in [{section}]; valid keys: {sorted(known)}")
    kw = {}
    for k, v in raw.items():
        want = getattr(defaults, k)
        if (section, k) in (("sweep", "act_formats"), ("tinylm", "configs")):
            if v != ("same" if k == "act_formats" else "transformer"):
                v = _check_type(section, k, v, ())
            kw[k] = v
            continue
        kw[k] = _check_type(section, k, v, want)
    return cls(**kw)


def study_granularity(g, where: str = "granularity") -> str:
    """The study's name for a granularity given by any name rf8sim.scales knows: ``tensor``, ``channel``,
    ``ceil`` (the study calls it ``block``: one ceil-rule scale per ``block`` values; ``block`` is its old
    library name).  ``mx`` (the OCP MX rule) is refused by name: the study does not sweep it."""
    from ... import scales

    if isinstance(g, str) and g in GRANULARITIES:
        return g
    try:
        canon = scales.canonical_granularity(g)
    except scales.ScaleError:
        canon = None
    if canon == "ceil":
        return "block"
    valid = "tensor, channel, ceil (also called block)"
    if canon == "mx":
        raise ConfigError(f"{where} 'mx' (the OCP MX scale rule of rf8sim.scales) is not swept by the study; "
                          f"valid: {valid}")
    raise ConfigError(f"{where} {g!r} is not valid; valid: {valid}")


def _canonical_granularities(raw: dict) -> dict:
    """``raw`` with the granularity names of [sweep], [transformer] and [tinylm] in the study's spelling."""
    out = dict(raw)
    sw = raw.get("sweep")
    if isinstance(sw, dict) and isinstance(sw.get("granularities"), list):
        out["sweep"] = {**sw, "granularities": [study_granularity(g, "[sweep] granularity")
                                                for g in sw["granularities"]]}
    for sec in ("transformer", "tinylm"):
        t = raw.get(sec)
        if isinstance(t, dict) and "granularity" in t:
            out[sec] = {**t, "granularity": study_granularity(t["granularity"], f"[{sec}] granularity")}
    return out


def config_from_dict(raw: dict) -> StudyConfig:
    """Build and validate a :class:`StudyConfig` from a parsed TOML/JSON mapping."""
    from ... import formats as F
    from ...golden.accspec import AccSpec, AccSpecError

    if not isinstance(raw, dict):
        raise ConfigError("a study configuration is a TOML table")
    known = {"study", "model", "sweep", "area", "flow", "transformer", "tinylm"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown}; valid sections: {sorted(known)}")
    if isinstance(raw.get("study"), dict) and "backend" in raw["study"]:
        raise ConfigError("[study] backend is gone: jobs run locally or on Ray; use [study] cluster = "
                          "\"local\" | \"auto\" | \"ray://HOST:PORT\" (or --cluster)")
    raw = _canonical_granularities(raw)
    from ..mnist1d import variants

    variants.ensure_registered()  # variant names are valid in configs
    cfg = StudyConfig(
        study=_section(StudySection, "study", raw.get("study")),
        model=_section(ModelSection, "model", raw.get("model")),
        sweep=_section(SweepSection, "sweep", raw.get("sweep")),
        area=_section(AreaSection, "area", raw.get("area")),
        flow=_section(FlowSection, "flow", raw.get("flow")),
        transformer=_section(TransformerSection, "transformer", raw.get("transformer")),
        tinylm=_section(TinyLMSection, "tinylm", raw.get("tinylm")),
    )
    s, m, w, a = cfg.study, cfg.model, cfg.sweep, cfg.area
    from ...infra.cluster import ClusterError, parse_cluster

    try:
        parse_cluster(s.cluster)
    except ClusterError as e:
        raise ConfigError(f"[study] cluster: {e}") from None
    from ...errors import OutputError
    from ...infra.fileio import safe_child

    try:  # the name becomes build/study/<name>: it must not escape that folder
        safe_child("build/study", s.name, "[study] name")
    except OutputError as e:
        raise ConfigError(str(e)) from None
    if s.workers < 1:
        raise ConfigError(f"[study] workers must be >= 1, got {s.workers}")
    if not 0 <= s.tolerance <= 1:
        raise ConfigError(f"[study] tolerance must be in [0, 1], got {s.tolerance}")
    if s.max_terms < 1:
        raise ConfigError(f"[study] max_terms must be >= 1, got {s.max_terms}")
    if m.task not in TASKS:
        raise ConfigError(f"[model] task {m.task!r} is not supported; valid: {list(TASKS)}")
    if m.arch not in ARCHS:
        raise ConfigError(f"[model] arch {m.arch!r} has no bit-exact inference path; valid: {list(ARCHS)}")
    if not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in m.hidden):
        raise ConfigError(f"[model] hidden must be a list of positive integers, got {list(m.hidden)}")
    if m.n_samples < 50 or m.n_samples % 10:
        raise ConfigError(f"[model] n_samples must be a multiple of 10 and >= 50, got {m.n_samples}")
    for k in ("epochs", "batch_size", "eval_samples"):
        if getattr(m, k) < 1:
            raise ConfigError(f"[model] {k} must be >= 1, got {getattr(m, k)}")
    for k in ("backslash_epochs", "finetune_epochs"):
        if getattr(m, k) < 0:
            raise ConfigError(f"[model] {k} must be >= 0, got {getattr(m, k)}")
    if m.init not in ("gg", "default"):
        raise ConfigError(f"[model] init must be 'gg' or 'default', got {m.init!r}")
    if not 0.1 <= m.gg_shape <= 10:
        raise ConfigError(f"[model] gg_shape must be in [0.1, 10], got {m.gg_shape}")
    if m.backslash < 0:
        raise ConfigError(f"[model] backslash (lambda) must be >= 0, got {m.backslash}")
    if m.lr <= 0:
        raise ConfigError(f"[model] lr must be > 0, got {m.lr}")
    fmts = list(w.formats) + ([] if w.act_formats == "same" else list(w.act_formats))
    for f in fmts:
        if not isinstance(f, str):
            raise ConfigError(f"[sweep] formats must be names, got {f!r}")
        try:
            F.get(f)
        except F.FormatError as e:
            raise ConfigError(f"[sweep] {e}") from None
    for r in w.roundings:
        if r not in F.ROUNDINGS:
            raise ConfigError(f"[sweep] rounding {r!r} is not one of {list(F.ROUNDINGS)}")
    for g in w.granularities:
        if g not in GRANULARITIES:
            raise ConfigError(f"[sweep] granularity {g!r} is not one of {list(GRANULARITIES)}")
    if w.block < 1:
        raise ConfigError(f"[sweep] block must be >= 1, got {w.block}")
    for acc in w.acc:
        try:
            AccSpec.parse(str(acc))
        except AccSpecError as e:
            raise ConfigError(f"[sweep] acc: {e}") from None
    for n in w.lanes:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"[sweep] lanes must be positive integers, got {n!r}")
    for mac in cfg.flow.macs:
        pair, at, acc = str(mac).lower().partition("@")
        parts = pair.split("x")
        if len(parts) != 2:
            raise ConfigError(f"[flow] macs entries are 'AxW' (8-bit, e.g. 'rf8xrf8') or 'AxW@ACC' (W8A16, e.g. "
                              f"'bf16xrf8@fp32'), got {mac!r}")
        try:
            fa, fw = (F.get(f) for f in parts)
        except F.FormatError as e:
            raise ConfigError(f"[flow] macs: {e}") from None
        if at:
            try:
                spec = AccSpec.parse(acc)
            except AccSpecError as e:
                raise ConfigError(f"[flow] macs {mac!r}: {e}") from None
            if spec.kind not in ("fp32", "aligned") or fa.code_bits != 16 or fw.code_bits > 16:
                raise ConfigError(f"[flow] macs {mac!r}: a W8A16 unit takes 16-bit activations (bf16, fp16), an "
                                  f"8-bit or bf16 weight format and the fp32 or aligned:K:M accumulator")
        elif fa.code_bits > 8 or fw.code_bits > 8:
            raise ConfigError(f"[flow] macs {mac!r}: 16-bit formats need a W8A16 accumulator, e.g. "
                              f"'{pair}@fp32'")
    if cfg.flow.verify_sequences < 0 or cfg.flow.verify_max_len < 1:
        raise ConfigError("[flow] verify_sequences must be >= 0 and verify_max_len >= 1")
    _check_arrays(cfg.flow)
    _check_transformer(cfg.transformer)
    _check_tinylm(cfg)
    if a.mode not in AREA_MODES:
        raise ConfigError(f"[area] mode must be one of {list(AREA_MODES)}, got {a.mode!r}")
    return cfg


def _check_transformer(t: "TransformerSection") -> None:
    """Everything the transformer stage needs, checked before any work (formats, accumulators)."""
    if t.model not in ("none", "minilm"):
        raise ConfigError(f"[transformer] model {t.model!r}; valid: 'minilm', 'none'")
    if t.model == "none":
        return
    for k in ("sentences", "sensitivity_sentences", "a16_sentences", "batch_size", "bootstrap", "min_words", "max_words"):
        if getattr(t, k) < 1:
            raise ConfigError(f"[transformer] {k} must be >= 1, got {getattr(t, k)}")
    if t.sentences < 20:
        raise ConfigError(f"[transformer] sentences must be >= 20 (retrieval needs neighbours), got {t.sentences}")
    if t.min_words > t.max_words:
        raise ConfigError(f"[transformer] min_words ({t.min_words}) > max_words ({t.max_words})")
    if not 0 < t.min_cosine <= 1:
        raise ConfigError(f"[transformer] min_cosine must be in (0, 1], got {t.min_cosine}")
    if t.granularity not in GRANULARITIES:
        raise ConfigError(f"[transformer] granularity {t.granularity!r} is not one of {list(GRANULARITIES)}")

    bad = [o for o in t.objectives if o not in OBJECTIVES]
    if bad or len(set(t.objectives)) != len(t.objectives):
        raise ConfigError(f"[transformer] objectives {list(t.objectives)}: each at most once, from {list(OBJECTIVES)}")
    from ..minilm.transformer import DatapathError

    from ..minilm.transformer import parse_configs

    for c in t.configs:
        try:
            for dp in parse_configs(c, t.granularity, 32, t.acc):
                dp.validate(1536)
        except DatapathError as e:
            raise ConfigError(f"[transformer] configs/acc: {e}") from None


def _check_tinylm(cfg: "StudyConfig") -> None:
    """The TinyLM stage's settings, checked before any work (shape, chunk counts, formats, accumulators)."""
    t = cfg.tinylm
    if t.model not in ("none", "tinylm"):
        raise ConfigError(f"[tinylm] model {t.model!r}; valid: 'tinylm', 'none'")
    if t.model == "none":
        return
    for k in ("d_model", "n_layer", "n_head", "block", "steps", "batch_size", "chunks", "a16_chunks", "bootstrap"):
        if getattr(t, k) < 1:
            raise ConfigError(f"[tinylm] {k} must be >= 1, got {getattr(t, k)}")
    if not 0 <= t.max_rel_loss < 1:
        raise ConfigError(f"[tinylm] max_rel_loss must be in [0, 1), got {t.max_rel_loss}")
    if t.d_model % t.n_head:
        raise ConfigError(f"[tinylm] d_model ({t.d_model}) must be a multiple of n_head ({t.n_head})")
    if t.lr <= 0:
        raise ConfigError(f"[tinylm] lr must be > 0, got {t.lr}")
    if t.chunks < TINYLM_MIN_CHUNKS:
        raise ConfigError(f"[tinylm] chunks must be >= {TINYLM_MIN_CHUNKS} (bootstrap intervals and paired tests over "
                          f"fewer say little), got {t.chunks}")
    if t.a16_chunks < 2:
        raise ConfigError(f"[tinylm] a16_chunks must be >= 2 (a paired test needs 2 chunks), got {t.a16_chunks}")
    if t.granularity not in GRANULARITIES:
        raise ConfigError(f"[tinylm] granularity {t.granularity!r} is not one of {list(GRANULARITIES)}")
    from ..minilm.transformer import DatapathError, parse_configs

    if t.configs == "transformer":
        configs, gran, acc, where = cfg.transformer.configs, cfg.transformer.granularity, cfg.transformer.acc, \
            "[transformer] configs/acc (taken by [tinylm] configs = 'transformer')"
    else:
        configs, gran, acc, where = t.configs, t.granularity, t.acc, "[tinylm] configs/acc"
    for c in configs:
        try:
            for dp in parse_configs(c, gran, 32, acc):
                dp.validate(cfg.study.max_terms)
        except DatapathError as e:
            raise ConfigError(f"{where}: {e}") from None


def spec_from(cls, source, **overrides):
    """A ``cls`` (a stage's spec dataclass) whose fields take the values of the same-named fields of ``source``
    (a config section or another spec; lists become tuples), then ``overrides``; the spec's other fields keep
    their defaults.  One place for the section -> spec copy that every stage needs."""
    have = {f.name for f in fields(source)}
    vals = {f.name: getattr(source, f.name) for f in fields(cls) if f.name in have and f.name not in overrides}
    vals = {k: tuple(v) if isinstance(v, list) else v for k, v in vals.items()}
    return cls(**vals, **overrides)


def resolve_config(arg: "str | Path") -> StudyConfig:
    """A path, or the name of a shipped config (tiny, small, full, flow, ...: ``rf8sim/study/configs/``)."""
    from importlib import resources

    p = Path(arg)
    if p.is_file():
        return load_config(p)
    ship = resources.files("rf8sim.study").joinpath("configs", f"{arg}.toml")
    if not p.suffix and ship.is_file():
        with resources.as_file(ship) as f:
            return load_config(f)
    return load_config(p)  # raises a clear error naming the path


def load_config(path: "str | Path") -> StudyConfig:
    """Read and validate a study TOML file (see the module docstring for the schema)."""
    p = Path(path)
    if not p.is_file():
        from ...errors import InputFileError

        raise InputFileError(f"study config {str(p)!r} does not exist (shipped ones: tiny, small, full, flow; "
                             "to write your own, start from one of them: rf8sim/study/configs/tiny.toml, schema in "
                             "docs/study.md, 'Configuration schema')")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not a TOML text file (not UTF-8 text: {e.reason} at byte {e.start}); "
                          "a study configuration is a .toml file such as the shipped tiny, small, full") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot be read ({e.strerror or e})") from None
    return config_from_dict(raw)


def config_hash(obj) -> str:
    """Stable short hash of a JSON-able object (dataclasses are converted): cache keys."""
    if hasattr(obj, "to_dict"):
        obj = obj.to_dict()
    elif hasattr(obj, "__dataclass_fields__"):
        obj = asdict(obj)
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
