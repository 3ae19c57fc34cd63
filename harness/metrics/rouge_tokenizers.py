"""Tokenizers for ROUGE: rouge-score's default with memoised stemming, and a Unicode-aware one.

rouge-score's default tokenizer lowercases, replaces every character outside ``a-z0-9``
with a space and Porter-stems tokens longer than three characters. It therefore drops
every non-Latin script: ROUGE on Chinese, Arabic or Cyrillic text is silently 0.
``UnicodeTokenizer`` keeps letters, marks and digits of any script and splits Chinese and
Japanese ideographs / kana into one token per character (those scripts do not separate
words with spaces). On pure-ASCII text it returns exactly what the default tokenizer does.
"""

from __future__ import annotations

import unicodedata

from nltk.stem import porter
from rouge_score import tokenize as rouge_tokenize
from rouge_score import tokenizers

# Code point ranges tokenised one character at a time: CJK ideographs (with extensions and
# compatibility blocks), Hiragana, Katakana and half-width Katakana.
_PER_CHARACTER_RANGES = (
    (0x3040, 0x30FF),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFF66, 0xFF9F),
    (0x20000, 0x323AF),
)


def _per_character(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _PER_CHARACTER_RANGES)


class MemoStemmer:
    """nltk's Porter stemmer (as rouge-score uses it) with a cache per word; same outputs."""

    def __init__(self) -> None:
        self._stemmer = porter.PorterStemmer()
        self._memo: dict[str, str] = {}

    def stem(self, word: str) -> str:
        """Stem ``word``, computing each distinct word once."""
        stemmed = self._memo.get(word)
        if stemmed is None:
            stemmed = self._memo[word] = self._stemmer.stem(word)
        return stemmed


class DefaultTokenizer(tokenizers.Tokenizer):
    """rouge-score's default tokenizer (its own ``tokenize.tokenize``) with memoised stemming."""

    name = "default"

    def __init__(self, use_stemmer: bool = False) -> None:
        self._stemmer = MemoStemmer() if use_stemmer else None

    def tokenize(self, text: str) -> list[str]:
        """Tokenize exactly as ``rouge_score.tokenizers.DefaultTokenizer`` does."""
        return rouge_tokenize.tokenize(text, self._stemmer)


class UnicodeTokenizer(tokenizers.Tokenizer):
    """Keep word characters of every script; one token per CJK ideograph or kana.

    Text is NFKC-normalised and lowercased; a token is a run of letters, combining marks and
    digits (Unicode categories L*, M*, N*). Scripts written without spaces other than
    Chinese and Japanese (Thai, Lao, Khmer, Myanmar) stay one token per space-separated run.
    With ``use_stemmer`` the Porter stemmer is applied to ``a-z0-9`` tokens longer than three
    characters, as rouge-score does.
    """

    name = "unicode"

    def __init__(self, use_stemmer: bool = False) -> None:
        self._stemmer = MemoStemmer() if use_stemmer else None

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into lowercased word tokens of any script."""
        tokens: list[str] = []
        current: list[str] = []
        for char in unicodedata.normalize("NFKC", text).lower():
            if _per_character(char):
                if current:
                    tokens.append("".join(current))
                    current = []
                tokens.append(char)
            elif unicodedata.category(char)[0] in "LMN":
                current.append(char)
            elif current:
                tokens.append("".join(current))
                current = []
        if current:
            tokens.append("".join(current))
        if self._stemmer is None:
            return tokens
        return [self._stemmer.stem(token)
                if len(token) > 3 and rouge_tokenize.VALID_TOKEN_RE.match(token) else token
                for token in tokens]


class CachingTokenizer(tokenizers.Tokenizer):
    """Wrap a tokenizer so each distinct text is tokenised once (rouge-score re-tokenises)."""

    def __init__(self, inner: tokenizers.Tokenizer) -> None:
        self.inner = inner
        self._cache: dict[str, list[str]] = {}

    def tokenize(self, text: str) -> list[str]:
        """The inner tokenizer's tokens for ``text``, from the cache when seen before."""
        tokens = self._cache.get(text)
        if tokens is None:
            tokens = self._cache[text] = self.inner.tokenize(text)
        return tokens
