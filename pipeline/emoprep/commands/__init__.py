"""Thin click commands, one module per verb; each calls one library function."""
