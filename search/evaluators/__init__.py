"""search/evaluators."""
