"""The ``tinyr1`` command line: one subcommand per module in this package.

    tinyr1 --help
    tinyr1 reward --answer B < completion.txt

Each module ``tinyr1/cli/<name>.py`` defines ``register(subparsers)``, which adds its parser and
sets ``func`` (taking the parsed args, returning an exit status). Bad input is a ``UserError``
(or the package's own input errors): the message goes to standard error and the status is 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Listed here, in help order. A name whose module is absent is skipped, so that a trimmed copy of
# the package (a Space without the training commands, say) still has a working CLI.
COMMANDS = ("reason", "reward", "frames", "eval", "world", "train_tiny", "train", "convert", "policies", "plan")


class UserError(Exception):
    """Bad input from the person at the terminal: printed without a traceback, exit status 2."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``only`` that one (so ``tinyr1 reward`` does not pay
    for importing torch through the training commands' modules)."""
    parser = argparse.ArgumentParser(prog="tinyr1", description="Small video reasoning models: run, inspect, retrain.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only is None else (only,):
        try:
            module = importlib.import_module(f"tinyr1.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"tinyr1.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def input_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the input was wrong' (exit 2), gathered from the package.

    Only from modules already imported: an error type of a module that was never imported cannot
    have been raised, and importing tinyr1.policy here would cost the seconds of importing torch
    on exactly the path that must answer fast (a bad flag or path). A full disk counts too: the
    person must act (free space), and a traceback would not help."""
    errors: list[type[BaseException]] = [UserError]
    for mod, name in (("tinyr1.video", "VideoError"), ("tinyr1.data", "DatasetError"), ("tinyr1.policy", "PolicyError"),
                      ("tinyr1.files", "DiskFullError"), ("tinyr1.limits", "LimitError"),
                      ("tinyr1.checkpoints", "CheckpointError")):
        error = getattr(sys.modules.get(mod), name, None)
        if isinstance(error, type) and issubclass(error, BaseException):
            errors.append(error)
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    first = argv[0].replace("-", "_") if argv else None
    args = build_parser(first if first in COMMANDS else None).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except input_errors() as exc:
        print(f"tinyr1 {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tinyr1 {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
