"""The ``accel`` command. Plugins add their subcommands through the ``accel_cli`` hook."""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass

from .errors import AccelError
from .registry import get_registry


@dataclass
class Commands:
    """What ``accel_cli`` hooks receive: argparse subparser groups for ``accel X`` and ``accel train X``."""

    top: argparse._SubParsersAction
    train: argparse._SubParsersAction


def _cmd_plugins(args) -> int:
    from . import modelmeta

    reg = get_registry()
    declared = [(c.kind, c.name) for c in reg.components()]
    for info in reg.plugins.values():
        print(f"{info.name}  [{info.source}]")
        for c in info.components:
            # a name several plugins declare is shown qualified: the only spelling that selects this one for sure
            name = c.qualified_name if declared.count((c.kind, c.name)) > 1 else c.name
            print(f"    {c.kind:<15} {name:<16} {c.summary}")
        for f in reg.model_files(info.name):
            try:
                m = modelmeta.read(f)
                desc = f"{m.dim}D {m.problem}, grid multiple {m.grid_multiple}"
            except Exception as exc:  # listing must survive one bad file
                desc = f"unreadable: {exc}"
            print(f"    {'model':<15} {f.name:<16} {desc}")
    for failure in reg.failures:
        print(f"FAILED {failure}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="accel", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = top.add_parser("plugins", help="list plugins, their components and shipped models")
    p.set_defaults(func=_cmd_plugins)
    train = top.add_parser("train", help="train a model (see 'accel train -h')")
    train_sub = train.add_subparsers(dest="trainer", metavar="NAME")
    get_registry().commands(Commands(top, train_sub))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except AccelError as exc:  # a user error: say what and how to fix it, no traceback
        print(f"accel: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
