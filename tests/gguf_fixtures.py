"""Vocab-only GGUF files for a model family, made with the `gguf` package from SmolLM2's vocabulary.

Each fixture carries the family's chat template and its control tokens (appended to the vocab as
CONTROL tokens), so llama.cpp itself tokenizes, detokenizes and reads the template: no weights,
a few MB, written to a temp dir by the tests (never committed).
"""

from __future__ import annotations

from pathlib import Path


SKIP = {"tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.chat_template", "llama.vocab_size",
        "tokenizer.ggml.eos_token_id", "general.architecture"}


def make_vocab_gguf(base: str, out: Path, template: str, special: list[str], eos: str) -> Path:
    import gguf

    reader = gguf.GGUFReader(base)
    tokens = [bytes(reader.fields["tokenizer.ggml.tokens"].parts[i]).decode("utf-8", "replace")
              for i in reader.fields["tokenizer.ggml.tokens"].data]
    types = [int(reader.fields["tokenizer.ggml.token_type"].parts[i][0])
             for i in reader.fields["tokenizer.ggml.token_type"].data]
    for s in special:
        if s not in tokens:
            tokens.append(s)
            types.append(gguf.TokenType.CONTROL)
    writer = gguf.GGUFWriter(str(out), "llama")
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in SKIP:
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = field.types[-1]
            if sub == gguf.GGUFValueType.STRING:
                values = [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]
            else:
                values = [field.parts[i].tolist()[0] for i in field.data]
            writer.add_array(key, values)
        elif vtype == gguf.GGUFValueType.STRING:
            writer.add_string(key, bytes(field.parts[field.data[0]]).decode("utf-8", "replace"))
        else:
            writer.add_key_value(key, field.parts[field.data[0]].tolist()[0], vtype)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_uint32("llama.vocab_size", len(tokens))
    writer.add_eos_token_id(tokens.index(eos))
    writer.add_chat_template(template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
