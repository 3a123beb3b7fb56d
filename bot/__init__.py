"""Composition: settings, CLI, web server and scheduler wiring."""
