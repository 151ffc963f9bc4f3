"""The command line: `app` (shared options), one module per command family, `main`."""
