"""Reporters: one module per output format.  They format results; they never compute."""
