"""Export the trained sentence encoder all-MiniLM-L6-v2 to ONNX (tests/text_zoo.py runs it in the zoo's torch venv).

    python tools/export_text.py OUT_DIR MODEL_DIR SEQ_LEN
MODEL_DIR is the unpacked wheel's model folder (config.json + model.safetensors), already hash-checked by the
caller; nothing is downloaded here. The venv has torch but not `transformers`, so the BERT encoder is written
out below (it is the standard post-LayerNorm BERT of the config) and the safetensors file is read by hand. The
graph is the sentence-transformers pipeline: BERT -> mean pooling over the attention mask -> L2 normalize.
Writes OUT_DIR/minilm_l6.onnx: inputs "input_ids", "attention_mask" int64 [1, SEQ_LEN], output "embedding"
float32 [1, 384]. Legacy TorchScript exporter, opset 17; prints one JSON line.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from pathlib import Path

import torch
from torch import nn

OPSET = 17
_DTYPES = {"F32": torch.float32, "I64": torch.int64}


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[start:end]), dtype=_DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


class Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, inter: int, eps: float):
        super().__init__()
        self.heads, self.eps = heads, eps
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attn_out, self.attn_norm = nn.Linear(hidden, hidden), nn.LayerNorm(hidden, eps=eps)
        self.inter, self.out = nn.Linear(hidden, inter), nn.Linear(inter, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, h = x.shape
        d = h // self.heads

        def split(t):
            return t.reshape(b, n, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + bias
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, h)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.out_norm(x + self.out(nn.functional.gelu(self.inter(x))))


class MiniLM(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        h, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.word = nn.Embedding(cfg["vocab_size"], h)
        self.pos = nn.Embedding(cfg["max_position_embeddings"], h)
        self.segment = nn.Embedding(cfg["type_vocab_size"], h)
        self.norm = nn.LayerNorm(h, eps=eps)
        self.layers = nn.ModuleList(Layer(h, cfg["num_attention_heads"], cfg["intermediate_size"], eps)
                                    for _ in range(cfg["num_hidden_layers"]))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[1]
        x = self.word(input_ids) + self.pos.weight[:n] + self.segment.weight[0]  # one segment: token type 0
        x = self.norm(x)
        m = attention_mask.to(torch.float32)
        bias = (1.0 - m)[:, None, None, :] * -10000.0  # padded keys get no attention
        for layer in self.layers:
            x = layer(x, bias)
        pooled = (x * m[:, :, None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1e-9)
        return pooled / pooled.norm(dim=1, keepdim=True).clamp(min=1e-12)

    def load(self, w: dict[str, torch.Tensor]) -> None:
        sd = {"word.weight": w["embeddings.word_embeddings.weight"],
              "pos.weight": w["embeddings.position_embeddings.weight"],
              "segment.weight": w["embeddings.token_type_embeddings.weight"],
              "norm.weight": w["embeddings.LayerNorm.weight"], "norm.bias": w["embeddings.LayerNorm.bias"]}
        names = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
                 "attn_out": "attention.output.dense", "attn_norm": "attention.output.LayerNorm",
                 "inter": "intermediate.dense", "out": "output.dense", "out_norm": "output.LayerNorm"}
        for i in range(len(self.layers)):
            for ours, theirs in names.items():
                for p in ("weight", "bias"):
                    sd[f"layers.{i}.{ours}.{p}"] = w[f"encoder.layer.{i}.{theirs}.{p}"]
        self.load_state_dict(sd, strict=True)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir, model_dir, seq = Path(argv[0]), Path(argv[1]), int(argv[2])
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    cfg = json.loads((model_dir / "config.json").read_text())
    model = MiniLM(cfg).eval()
    model.load(read_safetensors(model_dir / "model.safetensors"))
    ids = torch.zeros(1, seq, dtype=torch.int64)
    mask = torch.ones(1, seq, dtype=torch.int64)
    out_dir.mkdir(parents=True, exist_ok=True)
    out, tmp = out_dir / "minilm_l6.onnx", out_dir / f".minilm_l6.onnx.tmp{os.getpid()}"
    try:
        with torch.no_grad():
            torch.onnx.export(model, (ids, mask), str(tmp), dynamo=False, opset_version=OPSET,
                              do_constant_folding=True, input_names=["input_ids", "attention_mask"],
                              output_names=["embedding"])
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    print(json.dumps({"name": "minilm_l6", "bytes": out.stat().st_size, "seq_len": seq}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
