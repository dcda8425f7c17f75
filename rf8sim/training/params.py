"""Which parameters the training tools touch (BackSlash, DeepShape, rate_report, export)."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

__all__ = ["DEFAULT_KINDS", "select_params", "named_tensors"]

#: default: the weight of these layer types (not norms, not biases)
DEFAULT_KINDS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)


def select_params(model: nn.Module, select: "str | Iterable[str] | Callable | None" = None,
                  kinds=DEFAULT_KINDS) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) pairs chosen by ``select``.

    ``None`` (default): the ``weight`` of every module that is an instance of
    ``kinds`` (Linear/Conv/Embedding).  ``"all"``: every parameter.  A list of
    names: exactly those (unknown names raise).  A callable ``f(name, param,
    module) -> bool``: those it accepts.  Parameters are deduplicated (tied weights
    counted once) and returned in ``named_parameters`` order.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    owners = {}
    for mname, mod in model.named_modules():
        for pname, _ in mod.named_parameters(recurse=False):
            owners[(mname + "." if mname else "") + pname] = (mod, pname)
    named = list(model.named_parameters())
    if select is None:
        out = [(n, p) for n, p in named if owners.get(n, (None, ""))[1] == "weight"
               and isinstance(owners[n][0], kinds)]
    elif isinstance(select, str):
        if select != "all":
            raise ValueError(f"select={select!r}: use None (Linear/Conv/Embedding weights), 'all', "
                             "a list of parameter names or a callable")
        out = named
    elif callable(select):
        out = [(n, p) for n, p in named if select(n, p, owners.get(n, (None, ""))[0])]
    else:
        want = list(select)
        have = dict(named)
        missing = [n for n in want if n not in have]
        if missing:
            raise ValueError(f"unknown parameter name(s) {missing[:5]}; the model has e.g. {list(have)[:5]}")
        out = [(n, have[n]) for n in want]
    seen, uniq = set(), []
    for n, p in out:
        if id(p) not in seen:
            seen.add(id(p))
            uniq.append((n, p))
    return uniq


def named_tensors(obj, select=None) -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) from an nn.Module (via select_params), a dict of tensors, or one tensor."""
    if isinstance(obj, nn.Module):
        return [(n, p.detach()) for n, p in select_params(obj, select)]
    if isinstance(obj, torch.Tensor):
        return [("tensor", obj.detach())]
    if isinstance(obj, dict):
        items = [(k, v.detach()) for k, v in obj.items() if isinstance(v, torch.Tensor) and v.is_floating_point()]
        if select is not None and not isinstance(select, str):
            names = set(select)
            items = [(k, v) for k, v in items if k in names]
        return items
    raise TypeError(f"expected an nn.Module, a dict of tensors or a tensor, got {type(obj).__name__}")
