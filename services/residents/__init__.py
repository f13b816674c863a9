"""The residents service: households, residents, key service recipients, points."""
