"""Figures and reports: learning curves from TensorBoard logs, memory introspection, shared
figure helpers, and the statistics printed beside numbers."""
