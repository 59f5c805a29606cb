"""Many runs, or the whole pipeline at once: ``demo`` (synthetic scene, train, test),
``ablate`` (the paper's models x modes grid) and ``sweep`` (named config overrides x seeds)."""
