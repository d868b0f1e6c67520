"""The `chaosplane` command's API subcommands (the root, `local` and `token` are in chaosplane.cli)."""
