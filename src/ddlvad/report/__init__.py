"""Figures and the HTML report of one run, from its artifacts: ``plots`` (sigma trajectory,
score timelines, ROC), ``panels`` (the paper's Figure 4 and Figures 7/8) and ``page``
(report.html). Reports over many runs are in ``ddlvad.experiments``."""
