"""CLI subcommands: each module has ``register(subparsers)``; heavy imports stay inside its run function."""
