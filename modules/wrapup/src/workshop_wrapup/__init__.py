"""workshop_wrapup."""
