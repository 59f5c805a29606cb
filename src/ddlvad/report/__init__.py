"""Figures and the HTML report: ``plots`` (sigma trajectory, score timelines, ROC),
``panels`` (the paper's Figure 4 and Figures 7/8) and ``page`` (report.html)."""
