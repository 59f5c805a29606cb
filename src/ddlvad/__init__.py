"""ddlvad: video anomaly detection by Dynamic Distinction Learning."""

__version__ = "0.1.0"
