"""A model's health without labels: synthetic anomalies in normal footage (``synthetic``),
scored the way test footage is, and how well they stand out (``check``)."""
