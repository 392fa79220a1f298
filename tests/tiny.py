"""Tiny random checkpoints (hidden 32, 2 layers) of head classes no package ships, saved as real HF folders.

They exercise the real loading code; their outputs are random but their shapes and plumbing are real.
"""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "the a an is was are be to of and in on for with it this that movie film good bad great terrible "
    "love hate boring fun paris france london capital city river bank money dog cat who what where when "
    "john mary lives works at google berlin new york not very really i you he she we they"
).split()


def tiny_tokenizer(folder: Path):
    """A WordPiece tokenizer over a small vocabulary, saved as a fast tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted(set(WORDS))
    # dict.fromkeys keeps order and drops the letters that are also words ("a", "i").
    pieces = list(dict.fromkeys(words + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + list("abcdefghijklmnopqrstuvwxyz.,?!'")))
    vocab = {t: i for i, t in enumerate(specials + pieces)}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    fast = BertTokenizerFast(tokenizer_object=tok, model_max_length=64)
    fast.save_pretrained(folder)
    return fast


HEAD_CLASSES = {
    "base": "BertModel",
    "mlm": "BertForMaskedLM",
    "sequence-classification": "BertForSequenceClassification",
    "token-classification": "BertForTokenClassification",
    "question-answering": "BertForQuestionAnswering",
    "causal-lm": "GPT2LMHeadModel",
    "seq2seq-lm": "BartForConditionalGeneration",
}


def make_tiny_checkpoint(folder: Path, head: str = "mlm", labels: list[str] | None = None, seed: int = 0) -> Path:
    """Build and save a tiny random model of ``head`` (see HEAD_CLASSES) with a matching tokenizer."""
    import torch
    import transformers
    from transformers import BertConfig, GPT2Config

    torch.manual_seed(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = tiny_tokenizer(folder)
    if head == "causal-lm":
        config = GPT2Config(
            vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=64,
            bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id,
        )
    elif head == "seq2seq-lm":
        from transformers import BartConfig

        config = BartConfig(
            vocab_size=len(tok), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
            pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
            decoder_start_token_id=tok.sep_token_id, forced_eos_token_id=None,
        )
    else:
        config = BertConfig(
            vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64, pad_token_id=tok.pad_token_id,
        )
    if labels:
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
    cls = getattr(transformers, HEAD_CLASSES[head])
    config.architectures = [cls.__name__]
    model = cls(config)
    model.save_pretrained(folder)
    return folder
