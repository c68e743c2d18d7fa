"""`edgebit train`: BitNet b1.58 quantization-aware training of small models on CPU, written out as an
HF-format packed `model_type: bitnet` checkpoint that the loader, the reference model and transformers read.

  corpus.py    text in, a fixed train / held-out split (KJV from Debian's bible-kjv, or any text files)
  bpe.py       the byte-level BPE tokenizer trained on the same text
  data.py      token streams and the deterministic batches (a function of seed and step, so resume is exact)
  model.py     the training model: BitLinear with a straight-through estimator, mirroring reference.py
  schedule.py  the two-stage learning-rate and weight-decay schedule
  state.py     periodic checkpoints (safetensors + JSON, never pickle) and resume
  export.py    the packed HF checkpoint
  loop.py      the training loop that ties them together
"""
