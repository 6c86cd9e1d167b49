"""The algorithm: GAE, the PPO losses, learning-rate schedules, sequences and the rollout buffer,
normalisers, checkpoints, and `RecurrentPPO` itself."""
