"""Layer-structure tokens and the layer tokenizer (GPT-NAS §3.3); see :mod:`arch_gpt.tokenizer.tokenization`."""
from arch_gpt.tokenizer.tokenization import (
    NETWORK_INPUT_ID, SPECIAL_TOKENS, LayerTokenizer, TokenError, TokenizerFileError, build_vocab, check_token,
    count_tokens, layer_tokens, token_to_layer, tokens_to_architecture,
)

__all__ = [
    "NETWORK_INPUT_ID", "SPECIAL_TOKENS", "LayerTokenizer", "TokenError", "TokenizerFileError", "build_vocab",
    "check_token", "count_tokens", "layer_tokens", "token_to_layer", "tokens_to_architecture",
]
