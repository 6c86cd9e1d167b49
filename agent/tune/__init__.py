"""Many runs through one door: seeds and sweeps as Ray Tune experiments, search spaces, and the
table of trials."""
