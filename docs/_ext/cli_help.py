"""``bayesstrf-cli`` directive: the ``--help`` text of the ``bayesstrf`` command line.

``{bayesstrf-cli}`` alone gives the top-level help; ``{bayesstrf-cli} fit`` that of one
command. The text comes from ``bayesstrf.cli.main.build_parser()`` at build time, so the page never
drifts from the code.
"""

import argparse
import os

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

WIDTH = 96


def _help(command: str | None) -> str:
    from bayesstrf.cli.main import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)  # argparse wraps to the terminal width
    try:
        parser = build_parser()
        if command is None:
            return parser.format_help()
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if command not in subparsers.choices:
            raise ValueError(f"unknown bayesstrf command {command!r}: {sorted(subparsers.choices)}")
        return subparsers.choices[command].format_help()
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


class CliHelp(SphinxDirective):
    optional_arguments = 1
    has_content = False

    def run(self):
        command = self.arguments[0] if self.arguments else None
        try:
            text = _help(command)
        except ValueError as error:
            raise self.error(str(error)) from None
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app):
    app.add_directive("bayesstrf-cli", CliHelp)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
