"""Placeholder until the trainer lands."""
