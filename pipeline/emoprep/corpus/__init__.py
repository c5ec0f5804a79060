"""Corpus readers: parse a corpus on disk into typed records."""
