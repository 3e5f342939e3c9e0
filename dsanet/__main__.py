"""Command line: ``python -m dsanet {generate,protocols,train,evaluate,reproduce} --help``.

Each sub-command lives beside the code it drives and exposes ``add_arguments(parser)`` and
``run(args)``; this file only wires them together.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "generate": ("dsanet.data.synthetic", "write the embedded cross-modal identity benchmark"),
    "protocols": ("dsanet.data.protocols", "write matching / verification / retrieval lists"),
    "train": ("dsanet.engine.cli", "train a model, evaluate it on test, write metrics.json"),
    "evaluate": ("dsanet.engine.cli", "evaluate a checkpoint on test, write metrics.json"),
    "reproduce": ("dsanet.reproduce", "run the notebooks with papermill into reports/"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m dsanet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        if name != chosen:
            continue  # import only the chosen command's module
        mod = importlib.import_module(module)
        getattr(mod, f"add_{name}_arguments", getattr(mod, "add_arguments", None))(p)
        p.set_defaults(_run=getattr(mod, f"run_{name}", getattr(mod, "run", None)))
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
