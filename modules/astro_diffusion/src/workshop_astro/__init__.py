"""workshop_astro."""
