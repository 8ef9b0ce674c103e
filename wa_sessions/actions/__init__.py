"""One module per command: run_X(settings, options) -> Result. No rendering, no CLI framework."""
