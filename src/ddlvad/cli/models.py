"""``ddlvad models``: the shipped pretrained models (``--model NAME`` of test/predict/...)."""

from __future__ import annotations

import argparse

HELP = "list the shipped pretrained models (--model NAME)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from ddlvad import zoo

    found = zoo.names()
    for name in found:
        print(zoo.card_line(name))
    if not found:
        print("no shipped models in this build")
    else:
        print(f"(model cards: {zoo.ZOO_DIR}/NAME/MODEL_CARD.md)")
    return 0
