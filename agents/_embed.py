"""Embedders: text to vectors. An offline lexical default and the interface any backend implements."""

from __future__ import annotations

import hashlib
import math
import re
from abc import ABC, abstractmethod
from collections import Counter
from functools import lru_cache


class Embedder(ABC):
    """Turns texts into vectors of a fixed size; similar texts should get close vectors."""

    name: str = "embedder"
    dimensions: int

    @abstractmethod
    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order, each of length ``dimensions``."""


_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=65536)
def _bucket(feature: str, dimensions: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    return value % dimensions, (1.0 if value >> 63 else -1.0)


class HashingEmbedder(Embedder):
    """An offline, deterministic embedder: hashed character n-grams and words, no download.

    It is lexical, not semantic: texts are close when they share character
    sequences and words ("settle the trade" ~ "trade settlement"), not when
    they mean the same thing in different words ("sell" and "dispose of" are
    unrelated to it). Features are character 3- to 5-grams of the lowercased
    text plus whole words, weighted by sublinear term frequency (1 + log tf),
    hashed with BLAKE2b into ``dimensions`` signed buckets, and L2-normalized,
    so cosine similarity is a dot product. There is no corpus IDF: a vector
    depends on its text only, so stored vectors never go stale.
    """

    name = "vouch-hashing-ngram-1"

    def __init__(self, dimensions: int = 512, ngrams: tuple[int, int] = (3, 5)) -> None:
        self.dimensions = dimensions
        self.ngrams = ngrams

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit vector per text (the zero vector for text with no features)."""
        return [self.vector(text) for text in texts]

    def vector(self, text: str) -> list[float]:
        """The vector of one text, computed synchronously."""
        vector = [0.0] * self.dimensions
        for feature, count in self._features(text).items():
            index, sign = _bucket(feature, self.dimensions)
            vector[index] += sign * (1.0 + math.log(count))
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector] if norm else vector

    def _features(self, text: str) -> Counter[str]:
        normal = " " + _SPACE.sub(" ", text.lower()).strip() + " "
        low, high = self.ngrams
        grams: Counter[str] = Counter(
            normal[i : i + n] for n in range(low, high + 1) for i in range(len(normal) - n + 1)
        )
        grams.update("w:" + word for word in _WORD.findall(normal))
        return grams
