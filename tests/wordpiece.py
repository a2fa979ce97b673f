"""BERT's uncased WordPiece tokenizer in pure Python, driven by the model's own vocab.txt (the `tokenizers` library
is not installed here). It follows BertTokenizer with do_lower_case=True, tokenize_chinese_chars=True: clean
control characters, split CJK ideographs, lowercase + strip accents, split on whitespace and punctuation, then
greedy longest-match-first WordPiece with "##" continuations ([UNK] for a word with no cover or > 100 chars).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np

MAX_WORD_CHARS = 100


class WordPiece:
    def __init__(self, vocab_file: Path):
        tokens = Path(vocab_file).read_text(encoding="utf-8").splitlines()
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.cls, self.sep = self.vocab["[CLS]"], self.vocab["[SEP]"]
        self.pad, self.unk = self.vocab["[PAD]"], self.vocab["[UNK]"]

    def tokenize(self, text: str) -> list[str]:
        out = []
        for word in _basic(text):
            out.extend(self._pieces(word))
        return out

    def encode(self, text: str, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        """input_ids and attention_mask, int64 [1, seq_len]: [CLS] tokens [SEP], truncated then padded."""
        ids = [self.vocab.get(t, self.unk) for t in self.tokenize(text)][:seq_len - 2]
        ids = [self.cls, *ids, self.sep]
        mask = [1] * len(ids) + [0] * (seq_len - len(ids))
        ids = ids + [self.pad] * (seq_len - len(ids))
        return np.array([ids], np.int64), np.array([mask], np.int64)

    def _pieces(self, word: str) -> list[str]:
        if len(word) > MAX_WORD_CHARS:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            else:
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces


def _basic(text: str) -> list[str]:
    chars = []
    for c in text:
        cp = ord(c)
        if cp == 0 or cp == 0xFFFD or _is_control(c):
            continue
        if _is_cjk(cp):
            chars.append(f" {c} ")
        else:
            chars.append(" " if _is_space(c) else c)
    words = []
    for word in "".join(chars).split():
        word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        current = ""
        for c in word:
            if _is_punct(c):
                if current:
                    words.append(current)
                words.append(c)
                current = ""
            else:
                current += c
        if current:
            words.append(current)
    return words


def _is_space(c: str) -> bool:
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def _is_control(c: str) -> bool:
    if c in "\t\n\r":
        return False
    return unicodedata.category(c) in ("Cc", "Cf")


def _is_punct(c: str) -> bool:
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))
