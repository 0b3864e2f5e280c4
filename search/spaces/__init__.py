"""search/spaces."""
