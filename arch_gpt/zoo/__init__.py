"""arch_gpt/zoo."""
