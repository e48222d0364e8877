"""``clipica bench ica|extract|probe|fewshot|pipeline [--json]``: speed against a baseline in the same run.

Each target lives in ``clipica.bench.<target>`` with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Targets report ratios
against a baseline measured in the same process, never absolute timings alone.
"""

from __future__ import annotations

import importlib

HELP = "benchmark ICA, extraction or probes against a baseline measured in the same run"
TARGETS = ("ica", "extract", "probe", "fewshot", "intervene", "pipeline")


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for target in TARGETS:
        try:
            module = importlib.import_module(f"clipica.bench.{target}")
        except ModuleNotFoundError as exc:
            if exc.name == f"clipica.bench.{target}":
                continue
            raise
        p = sub.add_parser(target, help=module.HELP, description=module.HELP)
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        module.add_arguments(p)
        p.set_defaults(_bench=module.run)


def run(args) -> int:
    return args._bench(args)
