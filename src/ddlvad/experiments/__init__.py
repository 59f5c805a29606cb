"""Work over many runs, each an ordinary run driven through ``ddlvad.api.Run``: ``demo``
(synthetic scene, train, test), ``ablate`` (the paper's models x modes grid), ``sweep`` (named
config overrides x seeds), ``grid_report`` (a grid's report.html) and ``scenes`` (one run per
scene or camera)."""
