"""``python -m ddlvad.ema --run DIR``: re-estimate on clean training clips the BN statistics of
a run's last weights and weight EMA, as a module entry point (the code is
``ddlvad.train.ema``)."""

from ddlvad.train.ema import main

if __name__ == "__main__":
    raise SystemExit(main())
