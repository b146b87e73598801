"""RecRobust harness: datasets, text profiles, tasks, metrics, runner, leaderboards, CLI."""

__version__ = "0.1.0"
