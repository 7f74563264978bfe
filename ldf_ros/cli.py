"""`ldf-ros`: the command line of the package.

Each subcommand imports its implementation lazily so `ldf-ros --help` stays fast and a
missing optional dependency only affects the subcommand that needs it.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from ldf_ros.config import ConfigError, config_to_flat, default_config_path, load_config, parameter_docs


def _add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="ROS 2 parameters YAML (default: config/fusion.yaml)")


def cmd_config(args: argparse.Namespace) -> int:
    """Validate a config file and print the resolved parameters."""
    cfg = load_config(args.config or default_config_path())
    docs = parameter_docs()
    flat = config_to_flat(cfg)
    if args.markdown:
        print(parameters_markdown(flat, docs))
        return 0
    for key, value in flat.items():
        print(f"{key} = {value!r}" + (f"    # {docs[key]}" if args.verbose else ""))
    return 0


def parameters_markdown(flat: dict, docs: dict) -> str:
    """The README's parameter table, generated so it cannot drift from the schema."""
    rows = ["| parameter | default | meaning (allowed) |", "|---|---|---|"]
    rows += [f"| `{k}` | `{v!r}` | {docs[k]} |" for k, v in flat.items()]
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ldf-ros", description="LDFusion RGB-thermal fusion for ROS 2: tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text, setup in _REGISTRY:
        p = sub.add_parser(name, help=help_text, description=help_text)
        setup(p)
    return parser


def _setup_config(p: argparse.ArgumentParser) -> None:
    _add_config_arg(p)
    p.add_argument("-v", "--verbose", action="store_true", help="show each parameter's description")
    p.add_argument("--markdown", action="store_true", help="print the parameter table in Markdown")
    p.set_defaults(func=cmd_config)


_REGISTRY: list[tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = [
    ("config", "validate a config file and print its parameters", _setup_config),
]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"ldf-ros: config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
