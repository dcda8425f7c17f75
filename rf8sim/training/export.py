"""RF8 export: ``save_rf8(model, path)`` / ``load_rf8(path, model)`` in safetensors.

File layout (safetensors):

* ``<param>.codes`` (uint8, the parameter's shape) and ``<param>.scale_exp``
  (int8, the scale shape of the granularity) for each quantized weight;
* ``<param>`` (float32) for every other floating-point parameter and buffer
  (biases, norms), so a file restores the whole model;
* metadata key ``rf8sim``: JSON with ``format``, ``rounding``, ``granularity``,
  ``block``, ``package_version``, ``quantized`` (name -> shape), ``raw`` (names)
  and ``sha256`` over the metadata (without the checksum) and every tensor's
  name, dtype, shape and bytes in sorted order.

``load_rf8`` checks the checksum, the format, the names and every shape before
touching the model; any problem raises :class:`RF8FileError` and leaves the
model unchanged.  QAT models (``quantize_model_``) are saved from their latent
weights with their own config, so loading gives exactly the weights the forward
pass used.
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import hashlib
import json
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from .. import __version__
from .. import formats as F
from .params import DEFAULT_KINDS
from .quant import dequantize, quantize, scale_shape

__all__ = ["RF8FileError", "save_rf8", "load_rf8", "read_rf8"]

_META_KEY = "rf8sim"
_LAYOUT = 1


class RF8FileError(RF8SimError, ValueError):
    """A corrupted, truncated or mismatched rf8sim safetensors file."""


def _packed(mod) -> bool:
    from .ptq import RF8Linear

    return isinstance(mod, RF8Linear)


def _targets(model: nn.Module, select):
    """(param name, module, attribute) of the weights to quantize."""
    out = []
    if select is None:
        for mname, mod in model.named_modules():
            if isinstance(mod, DEFAULT_KINDS) or _packed(mod):
                out.append(((mname + "." if mname else "") + "weight", mod))
    else:
        wanted = set(select)
        for mname, mod in model.named_modules():
            for pn in ("weight",):
                full = (mname + "." if mname else "") + pn
                if full in wanted and (hasattr(mod, pn)):
                    out.append((full, mod))
                    wanted.discard(full)
        if wanted:
            raise RF8FileError(f"select names not found among module weights: {sorted(wanted)[:5]}")
    return out


def _latent(mod: nn.Module) -> torch.Tensor:
    if _packed(mod):
        return mod.codes
    if parametrize.is_parametrized(mod, "weight"):
        return mod.parametrizations.weight.original
    return mod.weight


def _raw_state(model: nn.Module, skip: set) -> dict:
    """Every floating parameter/buffer not quantized, by its plain (un-parametrized) name."""
    out = {}
    for k, v in model.state_dict().items():
        if ".parametrizations." in k:
            continue  # latent QAT weights: saved as codes
        if k in skip or not torch.is_tensor(v) or not v.is_floating_point():
            continue
        out[k] = v.detach().to(torch.float32).contiguous().cpu()
    return out


def _digest(meta: dict, tensors: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(meta, sort_keys=True).encode())
    for k in sorted(tensors):
        t = tensors[k].contiguous().cpu()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_rf8(model: nn.Module, path, fmt="rf8", rounding: str = "nearest", granularity: str = "channel",
             block: int = 32, select=None, overwrite: bool = False) -> dict:
    """Write ``model`` to ``path`` with its Linear/Conv/Embedding weights as RF8 codes + int8 scale exponents.

    QAT layers use their own format/rounding/granularity.  An existing ``path``
    is only replaced with ``overwrite=True`` (written to a temporary file, then
    renamed).  Returns the metadata written.
    """
    from safetensors.torch import save

    from ..errors import OutputExistsError
    from ..infra.fileio import check_output_path, write_bytes

    try:
        path = check_output_path(path, overwrite)
    except OutputExistsError:  # a FileExistsError
        raise OutputExistsError(f"{path} exists; pass overwrite=True to replace it") from None
    fmt = F.get(fmt)
    tensors, qmeta = {}, {}
    for name, mod in _targets(model, select):
        w = _latent(mod).detach()
        cfg = getattr(mod, "_rf8sim_qat", None)
        if _packed(mod):  # quantize_'s packed module: its codes and scales, bit for bit
            pc = mod.config
            spec = (pc.weight_fmt, pc.rounding, pc.granularity, pc.block)
            codes, k = mod.codes.detach(), mod.scale_exp.detach()
        else:
            spec = (fmt.name, rounding, granularity, block) if cfg is None else (
                cfg.weight_fmt, cfg.weight_rounding, cfg.weight_granularity, cfg.block)
            codes, k = quantize(w, *spec)
        tensors[name + ".codes"] = codes.cpu().contiguous()
        tensors[name + ".scale_exp"] = k.cpu().contiguous()
        qmeta[name] = {"shape": list(w.shape), "format": spec[0], "rounding": spec[1], "granularity": spec[2],
                       "block": spec[3]}
        if _packed(mod):
            from dataclasses import asdict

            qmeta[name]["packed"] = asdict(mod.config)
    if not qmeta:
        raise RF8FileError("no weight selected for RF8 export")
    raw = _raw_state(model, set(qmeta))
    clash = set(raw) & set(tensors)
    if clash:
        raise RF8FileError(f"parameter names clash with code/scale keys: {sorted(clash)[:3]}")
    tensors.update(raw)
    meta = {"layout": _LAYOUT, "format": fmt.name, "rounding": rounding, "granularity": granularity,
            "block": block, "package_version": __version__, "quantized": qmeta, "raw": sorted(raw)}
    meta["sha256"] = _digest(meta, tensors)
    data = save(tensors, metadata={_META_KEY: json.dumps(meta, sort_keys=True)})
    try:  # fileio: atomic, exclusive unless overwrite, the folder created, one-line errors
        write_bytes(path, data, overwrite)
    except OutputExistsError:
        raise OutputExistsError(f"{path} exists (written meanwhile); pass overwrite=True to replace it") from None
    return meta


def read_rf8(path) -> tuple[dict, dict]:
    """(metadata, tensors) of an rf8sim file, checksum verified; raises RF8FileError otherwise."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        from ..errors import InputFileError

        raise InputFileError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for truncation/garbage
        raise RF8FileError(f"{path}: not a readable safetensors file (truncated or corrupted?): {e}") from None
    if _META_KEY not in md:
        raise RF8FileError(f"{path}: no rf8sim metadata; not written by save_rf8")
    try:
        meta = json.loads(md[_META_KEY])
    except ValueError as e:
        raise RF8FileError(f"{path}: malformed rf8sim metadata ({e})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
        raise RF8FileError(f"{path}: malformed rf8sim metadata (expected a JSON object with a sha256 entry, "
                           f"got {type(meta).__name__})")
    digest = meta.pop("sha256")
    if not isinstance(meta.get("quantized"), dict) or not isinstance(meta.get("raw"), list):
        raise RF8FileError(f"{path}: malformed rf8sim metadata ('quantized' must be an object and 'raw' a list)")
    for name, q in meta["quantized"].items():
        if not isinstance(q, dict) or not {"shape", "format", "rounding", "granularity", "block"} <= set(q) \
                or not isinstance(q["shape"], list) or not isinstance(q["format"], str):
            raise RF8FileError(f"{path}: malformed rf8sim metadata for {name!r} (needs shape, format, rounding, "
                               "granularity and block)")
    if meta.get("layout") != _LAYOUT:
        raise RF8FileError(f"{path}: layout {meta.get('layout')!r} is not supported (expected {_LAYOUT})")
    if _digest(meta, tensors) != digest:
        raise RF8FileError(f"{path}: checksum mismatch - the file is corrupted or was modified")
    return meta, tensors


def load_rf8(path, model: nn.Module, strict: bool = True) -> nn.Module:
    """Load an ``save_rf8`` file into ``model`` (dequantized weights), after checking everything.

    ``strict``: the file's quantized and raw names must match the model's; ``strict=False`` loads the
    weights both hold and skips the rest (either side's).  Raises RF8FileError (model untouched) on any mismatch.
    """
    meta, tensors = read_rf8(path)
    if strict:
        targets = dict(_targets(model, None))
    else:  # load what both hold: a file weight the model lacks is skipped, as a raw parameter is
        have = {(m + "." if m else "") + "weight" for m, mod in model.named_modules() if hasattr(mod, "weight")}
        targets = dict(_targets(model, [n for n in meta["quantized"] if n in have]))
    if strict and set(targets) != set(meta["quantized"]):
        miss = sorted(set(targets) - set(meta["quantized"]))
        extra = sorted(set(meta["quantized"]) - set(targets))
        raise RF8FileError(f"{path}: quantized weights do not match the model (missing from file: {miss[:5]}, "
                           f"not in model: {extra[:5]})")
    state = model.state_dict()
    plan = []
    for name, q in meta["quantized"].items():
        if name not in targets:
            continue
        try:
            fmt = F.get(q["format"])
        except F.FormatError as e:
            raise RF8FileError(f"{path}: {name}: {e}") from None
        w = _latent(targets[name])
        codes, k = tensors.get(name + ".codes"), tensors.get(name + ".scale_exp")
        if codes is None or k is None:
            raise RF8FileError(f"{path}: {name}: codes or scale exponents missing")
        if list(w.shape) != q["shape"] or list(codes.shape) != q["shape"]:
            raise RF8FileError(f"{path}: {name}: shape {list(codes.shape)} in file, {list(w.shape)} in the model")
        if codes.dtype != torch.uint8 or k.dtype != torch.int8:
            raise RF8FileError(f"{path}: {name}: codes must be uint8 and scale exponents int8, "
                               f"got {codes.dtype}/{k.dtype}")
        want = scale_shape(codes.shape, q["granularity"], q["block"])
        if tuple(k.shape) != want:
            raise RF8FileError(f"{path}: {name}: scale_exp shape {tuple(k.shape)}, expected {want}")
        if _packed(targets[name]):
            pc = targets[name].config
            mine = (pc.weight_fmt, pc.granularity, pc.block)
            theirs = (fmt.name, q["granularity"], q["block"])
            if mine != theirs and not (mine[1] == "ceil" and theirs[1] == "block" and mine[::2] == theirs[::2]):
                raise RF8FileError(f"{path}: {name}: the file holds {theirs} (format, granularity, block), the "
                                   f"packed module expects {mine}")
            plan.append((targets[name].codes, codes))
            plan.append((targets[name].scale_exp, k))
            continue
        plan.append((w, dequantize(codes, k, fmt, q["granularity"], q["block"])))
    raw_names = meta["raw"]
    if strict:
        model_raw = {k for k, v in state.items() if ".parametrizations." not in k and torch.is_tensor(v)
                     and v.is_floating_point() and k not in meta["quantized"]}
        if model_raw != set(raw_names):
            raise RF8FileError(f"{path}: other parameters do not match the model (missing from file: "
                               f"{sorted(model_raw - set(raw_names))[:5]}, not in model: "
                               f"{sorted(set(raw_names) - model_raw)[:5]})")
    raw_plan = []
    for k in raw_names:
        if k not in state:
            continue
        if tuple(state[k].shape) != tuple(tensors[k].shape):
            raise RF8FileError(f"{path}: {k}: shape {tuple(tensors[k].shape)} in file, "
                               f"{tuple(state[k].shape)} in the model")
        raw_plan.append((state[k], tensors[k]))
    with torch.no_grad():  # everything checked: now write
        for w, v in plan:
            w.copy_(v.to(device=w.device, dtype=w.dtype))
        for dst, v in raw_plan:
            dst.copy_(v.to(device=dst.device, dtype=dst.dtype))
    return model
