"""Environments as training sees them: vector envs built from Gymnasium ids, wrappers named in a
config, env state as checkpoint data, and spaces as JSON."""
