"""What a user reads from runs: reports and the live dashboard."""
