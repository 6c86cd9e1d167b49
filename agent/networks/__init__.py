"""The networks: observation encoders, recurrent cores (LSTM, GRU, peephole LSTM), action
distributions, the actor-critic, and its fused inference path."""
