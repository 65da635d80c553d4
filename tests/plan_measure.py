"""Peak memory one training step adds on the CPU (run as a script by tests/test_plan.py).

Builds a Qwen2 model from the config given as JSON, then measures the peak resident memory of two
optimizer steps above what the process held after loading (VmHWM after resetting it through
/proc/self/clear_refs): weights are excluded, the training state is what is measured.
"""

import gc
import json
import sys

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, Qwen2Config

torch.set_num_threads(1)
spec = json.loads(sys.argv[1])
config = Qwen2Config(**spec["config"])
model = AutoModelForCausalLM.from_config(config)
model.config.use_cache = False
if spec["gradient_checkpointing"]:
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
if spec["tuner"] != "full":
    model = get_peft_model(
        model, LoraConfig(r=spec["rank"], lora_dropout=spec["dropout"], target_modules="all-linear")
    )
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
ids = torch.randint(0, config.vocab_size, (spec["batch"], spec["length"]))


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


gc.collect()
base = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
for _ in range(2):
    if spec.get("chunked_loss"):
        from swift_core.train.chunked_loss import causal_lm_loss

        out = model(input_ids=ids, output_hidden_states=True, logits_to_keep=1)
        causal_lm_loss(out.hidden_states[-1], model.get_output_embeddings(), ids).backward()
    else:
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    del out
print(json.dumps({"peak_training_bytes": status("VmHWM:") - base, "trainable": trainable}))
