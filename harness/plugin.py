"""pytest plugin: command-line options, fixtures and report hooks (filled in below)."""
