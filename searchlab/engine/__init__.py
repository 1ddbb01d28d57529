"""What drives a run: its resolved configuration, the ask/evaluate/tell loop, seeding, the backends."""
