"""The scoring protocol and the test verb's library: ``protocol`` (error map, patch max,
median filters, edge rule, windows, post-processing), ``reconstruct`` (the network over whole
videos), ``metrics`` (frame and pixel AUC, EER, AP), ``evaluate`` (scores.csv, metrics.json)
and ``protocols`` (every protocol side by side from one pass)."""
