"""What a run leaves on disk: the one writer (run_store), what readers read (run_view), the trial cache."""
