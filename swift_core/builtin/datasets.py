"""Built-in named datasets: `--dataset alpaca-en` (or its hub id) instead of a file.

Each is a hub id with the subset, split and column renames its rows need; the loader
(`swift_core.datasets.loader`) reads it with `datasets.load_dataset` and converts the rows like a
local file's. Ids and columns follow ms-swift (`swift/llm/dataset/...`) and LLaMA-Factory
(`data/dataset_info.json`). Imported at every CLI start: nothing heavy here.
"""

from __future__ import annotations

from swift_core.descriptors import DatasetDescriptor
from swift_core.hookspecs import hookimpl

DATASETS = (
    # --- supervised fine-tuning ---
    DatasetDescriptor(
        name="alpaca-en",
        description="Alpaca instructions answered by GPT-4, English (52k, alpaca format)",
        hf_id="vicgalle/alpaca-gpt4",
        ms_id="AI-ModelScope/alpaca-gpt4-data-en",
        aliases=("alpaca-gpt4-data-en",),
        tags=("sft", "en"),
    ),
    DatasetDescriptor(
        name="alpaca-zh",
        description="Alpaca instructions answered by GPT-4, Chinese (49k, alpaca format)",
        hf_id="llm-wizard/alpaca-gpt4-data-zh",
        ms_id="AI-ModelScope/alpaca-gpt4-data-zh",
        aliases=("alpaca-gpt4-data-zh",),
        tags=("sft", "zh"),
    ),
    DatasetDescriptor(
        name="alpaca-cleaned",
        description="The original Alpaca data, cleaned (52k, alpaca format)",
        hf_id="yahma/alpaca-cleaned",
        ms_id="AI-ModelScope/alpaca-cleaned",
        tags=("sft", "en"),
    ),
    DatasetDescriptor(
        name="ultrachat-200k",
        description="Multi-turn chats filtered from UltraChat (200k, messages)",
        hf_id="HuggingFaceH4/ultrachat_200k",
        ms_id="swift/ultrachat_200k",
        split="train_sft",
        tags=("sft", "en", "multi-turn"),
    ),
    DatasetDescriptor(
        name="no-robots",
        description="10k human-written instructions and answers (messages)",
        hf_id="HuggingFaceH4/no_robots",
        ms_id="swift/no_robots",
        tags=("sft", "en"),
    ),
    DatasetDescriptor(
        name="gsm8k",
        description="Grade-school math word problems with worked answers (7.5k)",
        hf_id="openai/gsm8k",
        ms_id="modelscope/gsm8k",
        subset="main",
        columns={"question": "query", "answer": "response"},
        tags=("sft", "math"),
    ),
    # --- preference (DPO and friends) ---
    DatasetDescriptor(
        name="hh-rlhf",
        description="Anthropic helpful/harmless preference pairs (161k, hh-rlhf text)",
        hf_id="Anthropic/hh-rlhf",
        ms_id="AI-ModelScope/hh-rlhf",
        tags=("preference", "en"),
    ),
    DatasetDescriptor(
        name="ultrafeedback",
        description="UltraFeedback binarized preference pairs (61k, chosen/rejected messages)",
        hf_id="HuggingFaceH4/ultrafeedback_binarized",
        split="train_prefs",
        aliases=("ultrafeedback-binarized",),
        tags=("preference", "en"),
    ),
    DatasetDescriptor(
        name="orca-dpo-pairs",
        description="Orca questions with a GPT-4 (chosen) and a weaker (rejected) answer (13k)",
        hf_id="Intel/orca_dpo_pairs",
        ms_id="swift/orca_dpo_pairs",
        columns={"question": "query"},
        tags=("preference", "en"),
    ),
    # --- KTO (unpaired, labelled) ---
    DatasetDescriptor(
        name="kto-mix-14k",
        description="Prompt/completion pairs labelled desirable or not, for KTO (14k)",
        hf_id="trl-lib/kto-mix-14k",
        tags=("kto", "en"),
    ),
    # --- multimodal ---
    DatasetDescriptor(
        name="llava-en-zh-2k",
        description="LLaVA image conversations, English subset (1k, messages + images)",
        hf_id="BUAADreamer/llava-en-zh-2k",
        subset="en",
        tags=("sft", "multimodal", "en"),
    ),
    DatasetDescriptor(
        name="path-vqa",
        description="Visual questions on pathology images (VQA, image + question + answer)",
        hf_id="flaviagiammarino/path-vqa",
        ms_id="swift/path-vqa",
        columns={"image": "images", "question": "query", "answer": "response"},
        tags=("sft", "multimodal", "vqa"),
    ),
    DatasetDescriptor(
        name="rlaif-v",
        description="Image questions with a chosen and a rejected answer (multimodal DPO, 83k)",
        hf_id="openbmb/RLAIF-V-Dataset",
        ms_id="swift/RLAIF-V-Dataset",
        columns={"image": "images", "question": "query"},
        tags=("preference", "multimodal", "en"),
    ),
)


@hookimpl
def register_datasets(register):
    for descriptor in DATASETS:
        register(descriptor)
