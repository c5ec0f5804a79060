"""Thin click commands, one module per verb."""
