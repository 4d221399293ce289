"""The one exception the engine raises for bad input, so callers (forms, CLI) can show its message."""


class ConfigError(ValueError):
    """A machine, expert list, workload or run configuration that cannot be simulated as given."""
