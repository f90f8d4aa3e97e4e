"""Logs, metrics and tracing hooks."""
