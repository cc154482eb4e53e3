"""`mprt` command line: one module per subcommand, each exposing `register(subparsers)`.

A subcommand module registers its parser and sets `func` (called with the parsed args; returns an
exit code). Heavy imports happen inside `func`, so `mprt --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from engine.cli.signals import Terminated, terminate_as_interrupt
from engine.errors import MprtError, describe_os_error

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
    "engine.cli.distill",
    "engine.cli.distill_decoder",
    "engine.cli.finetune_decoder",
    "engine.cli.export",
    "engine.cli.build",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mprt",
        description="magicportrait-rt: animate a portrait with the motion of a driving video "
        "(MagicPortrait). Runs without downloaded weights on its built-in model, a small one trained on "
        "synthetic heads (it says so).",
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
    with terminate_as_interrupt():
        try:
            return int(args.func(args) or 0)
        except MprtError as err:  # user-facing: one clear line, exit code 2
            return _fail(args, str(err))
        except OSError as err:  # the environment: read-only or full disk, missing folder, is-a-directory
            return _fail(args, describe_os_error(err))
        except KeyboardInterrupt as stop:
            signal_name = "SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"
            print(f"mprt {args.command}: interrupted ({signal_name}); outputs hold what was written so far",
                  file=sys.stderr)
            return 143 if isinstance(stop, Terminated) else 130


def _fail(args, message: str) -> int:
    print(f"mprt {args.command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
