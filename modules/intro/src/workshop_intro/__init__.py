"""workshop_intro."""
