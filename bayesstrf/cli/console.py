"""Command-line plumbing: where output goes (stdout, stderr, ``--json``), log records and
warnings on stderr, and the argument parser that raises instead of exiting."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys

from bayesstrf.files import plain


class _Console:
    """Where a command writes. ``result`` is the human-readable result: stdout, or stderr with
    ``--json`` (dropped with ``--quiet`` too); ``info`` is chatter on stderr (dropped with
    ``--quiet``); ``emit`` prints the JSON record on stdout with ``--json``."""

    def __init__(self, as_json: bool, quiet: bool):
        self.as_json, self.quiet = as_json, quiet

    def result(self, text: str) -> None:
        if not self.as_json:
            print(text)
        elif not self.quiet:
            print(text, file=sys.stderr)

    def info(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr)

    def emit(self, record: dict) -> None:
        if self.as_json:
            print(json.dumps(plain(record), indent=2, allow_nan=False))


class _Formatter(logging.Formatter):
    """Progress lines (INFO) as they are, other records prefixed by their level."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno == logging.INFO else f"{record.levelname}: {message}"


@contextlib.contextmanager
def _logging(quiet: bool):
    """Log records and Python warnings to stderr while a command runs: bayesstrf's progress
    lines and everyone's warnings, or only errors with ``--quiet``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root, package = logging.getLogger(), logging.getLogger("bayesstrf")
    levels = root.level, package.level
    root.addHandler(handler)
    root.setLevel(logging.ERROR if quiet else logging.WARNING)
    package.setLevel(logging.ERROR if quiet else logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(levels[0])
        package.setLevel(levels[1])


class _UsageError(Exception):
    """A command line that argparse cannot parse; `main` prints it as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the usage too, then exit
        raise _UsageError(message)


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, found {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None
