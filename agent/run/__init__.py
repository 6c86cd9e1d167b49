"""Running one training from the command line: flags and presets, rl-zoo files, callbacks,
evaluation rollouts and run folders."""
