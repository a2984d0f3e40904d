"""Generated Pinstack contracts (do not edit; regenerate with `make proto`)."""
