"""Arguments of `swift rlhf` (the seed's `--method dpo --beta 0.1` spellings accepted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from swift_core.config.arguments import arg
from swift_core.config.train_args import TrainArguments


@dataclass(kw_only=True)
class RLHFArguments(TrainArguments):
    ARG_GROUP: ClassVar[str] = "alignment"
    CAPABILITY_KINDS: ClassVar[tuple[str, ...]] = (
        "tuners",
        "quantizers:load_time",
        "alignment_losses",
        "reward_functions",  # online RL (--rlhf_type grpo): --reward_funcs and their options
        "engines:rollout_options",  # online RL: options of the rollout engines that declare them
        "strategies",
    )
    CAPABILITY_SELECTORS: ClassVar[dict[str, str]] = {"engines": "rollout_engine"}
    # ms-swift's and TRL's GRPO flags for the rollout engine, and what they are here.
    FOREIGN_SPELLINGS: ClassVar[dict[str, str]] = {
        "use_vllm": "--rollout_engine vllm (colocated) or --rollout_engine server (a swift deploy server)",
        "vllm_mode": "--rollout_engine vllm for colocate, --rollout_engine server --rollout_server_url URL for server",
        "vllm_server_host": "--rollout_server_url http://HOST:PORT (with --rollout_engine server)",
        "vllm_server_port": "--rollout_server_url http://HOST:PORT (with --rollout_engine server)",
        "vllm_server_base_url": "--rollout_server_url URL (with --rollout_engine server)",
    }

    rlhf_type: str = arg(
        "dpo",
        help="An alignment-loss plugin: dpo, ipo, simpo, orpo, cpo, kto, rm (reward model), ... (the installed ones and their options are listed below)",
        aliases=("method",),
    )
    beta: float = arg(0.1, help="Strength of the KL regularisation (DPO family), or the reward scale")
    rpo_alpha: float | None = arg(None, help="Add this weight times the NLL of chosen answers to any loss")
    ref_model: str | None = arg(
        None, help="Reference model folder (default: the adapter disabled, or a frozen copy)"
    )
    precompute_ref_log_probs: bool = arg(False, help="Compute the reference log-probs once, before training")
