"""``ddlvad info``: what a dataset root holds, as JSON."""

from __future__ import annotations

import argparse
import json

from ddlvad.cli.common import add_data, build_config

HELP = "JSON summary of a dataset root"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data(p)


def run(args: argparse.Namespace) -> int:
    from ddlvad.data.info import dataset_info

    print(json.dumps(dataset_info(build_config(args)), indent=2))
    return 0
