"""`mprt` command line: one module per subcommand, each exposing `register(subparsers)`.

A subcommand module registers its parser and sets `func` (called with the parsed args; returns an
exit code). Heavy imports happen inside `func`, so `mprt --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from engine.errors import MprtError

# Subcommand modules, in the order `mprt --help` lists them.
COMMAND_MODULES = [
    "engine.cli.demo",
    "engine.cli.animate",
    "engine.cli.live",
    "engine.cli.serve",
    "engine.cli.track",
    "engine.cli.render_guidance",
    "engine.cli.convert_flame",
    "engine.cli.make_tiny_weights",
    "engine.cli.train",
    "engine.cli.export",
    "engine.cli.build",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mprt",
        description="magicportrait-rt: animate a portrait with the motion of a driving video "
        "(MagicPortrait). Runs without downloaded weights on a tiny random model (it says so).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except MprtError as err:  # user-facing: one clear line, exit code 2
        print(f"mprt {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mprt {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
