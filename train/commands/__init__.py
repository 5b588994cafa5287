"""The subcommands of ``ponita``: one module each, its parser (``add_parser``) beside its handler."""

from . import bench, data, demo, md, sample, train

# In the order of `ponita --help`.
COMMANDS = (train, md, bench, data, sample, demo)
