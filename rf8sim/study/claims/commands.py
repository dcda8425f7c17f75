"""``rf8sim claims NAME [--quick] [--seeds N] [--out DIR] [--force]``."""

from __future__ import annotations

__all__ = ["register"]


def register(sub) -> None:
    from ...infra.cliargs import add_record_args
    from . import RECIPES

    p = sub.add_parser(
        "claims",
        help="measure the paper's claims (gg-fit, gg-init, backslash, deepshape, rf8-inference, all)",
        description="Run a claim recipe, print its summary table and write JSON results "
                    "(default training/results/NAME.json in the checkout; with --quick build/claims/NAME.quick.json "
                    "in the working folder).",
    )
    p.add_argument("name", choices=[*RECIPES, "all", "report"],
                   help="which claim (all: every recipe in turn; report: markdown tables of the recorded results)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and 1-2 seeds (seconds); for CI")
    p.add_argument("--seeds", type=int, default=None, help="number of training seeds (default 3; quick 1-2)")
    p.add_argument("--out", default=None, metavar="DIR", help="directory for NAME.json (and figures)")
    add_record_args(p, None, "overwrite an existing result file", progress="no progress bars")
    p.add_argument("--workers", type=int, default=1, help="local parallel tasks (default 1: in this process)")
    p.add_argument("--no-cache", action="store_true", help="recompute every task instead of reusing cached results")
    from ..commands import add_cluster_args

    add_cluster_args(p)
    p.set_defaults(func=cmd_claims)


def cmd_claims(args) -> int:
    from rf8sim.infra import cache

    from . import RECIPES
    from .runner import run_claim

    if args.cache_dir:
        cache.set_root(args.cache_dir)
    if args.workers != 1 and args.cluster is not None:
        from rf8sim.infra.cluster import parse_cluster

        if parse_cluster(args.cluster) != "local":
            from .common import ClaimError

            raise ClaimError(f"--workers sets local processes; with --cluster {args.cluster} Ray places the tasks, "
                             "so drop --workers (or run locally)")

    if args.name == "report":
        from .report import render

        print(render(args.out), end="")
        return 0
    names = list(RECIPES) if args.name == "all" else [args.name]
    for n in names:
        run_claim(n, quick=args.quick, seeds=args.seeds, out=args.out, force=args.force,
                  progress=not args.no_progress, cluster=args.cluster or "local", workers=args.workers,
                  use_cache=not args.no_cache)
    return 0
