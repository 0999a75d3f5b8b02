"""workshop_protein."""
