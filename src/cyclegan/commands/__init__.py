"""One module per `cyclegan` subcommand: `add_parser(subparsers)` and `run(args) -> int`."""
