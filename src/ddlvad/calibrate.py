"""``python -m ddlvad.calibrate --run DIR``: the ``ddlvad calibrate`` verb as a module entry
point (the calibration itself is ``ddlvad.train.calibrate``)."""

from ddlvad.cli.calibrate import main

if __name__ == "__main__":
    raise SystemExit(main())
