"""The demo: pretrain a tiny model with `swift pt`, teach it tasks with `swift sft` + LoRA."""
