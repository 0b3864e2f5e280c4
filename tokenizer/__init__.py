"""Layer-structure tokens and the layer tokenizer (GPT-NAS §3.3); see :mod:`arch_gpt.tokenizer.tokenization`."""
from arch_gpt.tokenizer.tokenization import (
    FITNESS_TOKENS, NETWORK_INPUT_ID, NON_LAYER_TOKENS, SPECIAL_TOKENS, LayerTokenizer, TokenError, TokenizerFileError, build_vocab, check_token,
    count_tokens, layer_tokens, token_to_layer, tokens_to_architecture,
)

__all__ = [
    "FITNESS_TOKENS", "NETWORK_INPUT_ID", "NON_LAYER_TOKENS", "SPECIAL_TOKENS", "LayerTokenizer", "TokenError", "TokenizerFileError", "build_vocab",
    "check_token", "count_tokens", "layer_tokens", "token_to_layer", "tokens_to_architecture",
]
