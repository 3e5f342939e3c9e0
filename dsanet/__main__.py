"""Command line: ``python -m dsanet <command>``: generate, protocols, prepare, train, evaluate,
match, embed, card, sweep, reproduce.

Each sub-command lives beside the code it drives and exposes ``add_arguments(parser)`` and
``run(args)``; this file only wires them together, configures logging (``--verbose`` /
``--quiet``) and turns user errors (a bad option or value, a missing file or folder, bad data, a
run that cannot be resumed) into one line on stderr and exit status 2; ``--debug`` shows the
traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__

COMMANDS = {
    "generate": ("dsanet.data.synthetic", "write the embedded cross-modal identity benchmark"),
    "protocols": ("dsanet.data.protocols", "write matching / verification / retrieval lists"),
    "prepare": ("dsanet.data.prepare", "check VoxCeleb1 + VGGFace downloads, write a config"),
    "train": ("dsanet.engine.cli", "train a model, evaluate it on test, write metrics.json"),
    "evaluate": ("dsanet.engine.cli", "evaluate a checkpoint on test or on list files"),
    "match": ("dsanet.inference", "rank faces for a voice (or voices for a face)"),
    "embed": ("dsanet.inference", "export the embedding of every item of a data tree"),
    "card": ("dsanet.card", "ship a checkpoint: copy it to models/ and write its model card"),
    "sweep": ("dsanet.experiments.cli", "train the tables' runs (local pool or Ray), write tables"),
    "reproduce": ("dsanet.runner", "run the notebooks with papermill into reports/"),
}
EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``prog: error: message``) and exit status 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown once: not for options whose help already names its default, nor None."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def add_common_arguments(p: argparse.ArgumentParser, top: bool = False) -> None:
    """--debug, --verbose, --quiet (an option a command defines itself is left to it)."""
    have = p._option_string_actions
    d = {"default": argparse.SUPPRESS} if top else {}
    if "--debug" not in have:
        p.add_argument("--debug", action="store_true", help="show the traceback of an error", **d)
    if "--verbose" not in have:
        p.add_argument("-v", "--verbose", action="store_true", help="debug-level log messages", **d)
    if "--quiet" not in have:
        p.add_argument("-q", "--quiet", action="store_true",
                       help="warnings and errors only, no progress bars", **d)


def user_errors() -> tuple[type, ...]:
    """Exceptions that are the user's to fix: printed as one line, exit status 2."""
    from .engine.checkpoint import CheckpointError
    from .engine.device import DeviceError

    return (ValueError, argparse.ArgumentTypeError, FileNotFoundError, FileExistsError,
            NotADirectoryError, IsADirectoryError, PermissionError, CheckpointError, DeviceError,
            ConnectionError)


class _StderrHandler(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (not the one at creation: tests swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """dsanet's log messages on stderr: INFO by default, DEBUG with --verbose, WARNING --quiet."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("dsanet")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = Parser(prog="python -m dsanet", formatter_class=HelpFormatter,
                    description="DSANet voice-face matching: generate data, train, evaluate, "
                                "use a trained model, reproduce the notebooks. "
                                "COMMAND --help for each command's options.")
    parser.add_argument("--version", action="version", version=f"dsanet {__version__}")
    add_common_arguments(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_, formatter_class=HelpFormatter)
        if name != chosen:
            continue  # import only the chosen command's module
        mod = importlib.import_module(module)
        getattr(mod, f"add_{name}_arguments", getattr(mod, "add_arguments", None))(p)
        add_common_arguments(p)
        p.set_defaults(_run=getattr(mod, f"run_{name}", getattr(mod, "run", None)))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    debug = "--debug" in argv
    try:
        args = build_parser(chosen).parse_args(argv)
        head = argv[: argv.index(chosen)] if chosen in argv else argv  # options before COMMAND
        for flag, names in (("verbose", ("-v", "--verbose")), ("quiet", ("-q", "--quiet"))):
            setattr(args, flag, getattr(args, flag, False) or any(n in head for n in names))
        configure_logging(getattr(args, "verbose", False), getattr(args, "quiet", False))
        return int(args._run(args) or 0)
    except user_errors() as e:
        if debug:
            raise
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"dsanet {chosen or ''}: error: {msg}".replace("  ", " "), file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as e:
        if debug or e.name in (None, "dsanet") or str(e.name).startswith("dsanet."):
            raise
        extra = ("notebooks" if e.name in ("papermill", "nbformat", "nbclient", "jupytext")
                 else "cluster" if e.name == "ray" else None)
        hint = f"; install it with pip install 'dsanet[{extra}]'" if extra else ""
        print(f"dsanet {chosen or ''}: error: the {e.name} package is not installed{hint}",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if debug:
            raise
        print("dsanet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
