"""The online-RL trainer: sample, score, compute advantages, train, give the engine the weights.

One `compute_loss` call is one micro-batch: `per_device_train_batch_size` prompts, each sampled
`--num_generations` times through the rollout engine (a seed derived from the step, so a resumed
run samples what the uninterrupted one sampled), scored by the reward functions, turned into
advantages by the loss plugin, then one forward of the policy (and of the reference when --beta is
not 0) over prompt + completion. The engine gets the policy's weights whenever an optimizer step
has changed them. The loss's name is never read: the descriptor and the loss object decide.
"""

from __future__ import annotations

from typing import Any

import click

from swift_core.align.trainer import PreferenceTrainer
from swift_core.rl.base import RolloutLogps
from swift_core.rl.rewards import score_completions


def completion_logps(model: Any, batch: dict[str, Any], temperature: float) -> Any:
    """Per-token log-probs (B, T) of the completion tokens at the sampling temperature (TRL's
    scaling); positions follow the attention mask, as in generation from left-padded prompts."""
    import torch

    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits
    width = batch["completion_ids"].shape[1]
    logits = logits[:, -width - 1 : -1, :].float() / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, batch["completion_ids"].unsqueeze(-1)).squeeze(-1)


class OnlineRLTrainer(PreferenceTrainer):
    def __init__(
        self,
        *args: Any,
        rollout: Any,
        rewards: list[Any],
        options: Any,
        pad_id: int,
        saves_adapter: bool,
        **kwargs: Any,
    ):
        super().__init__(*args, paired=True, **kwargs)
        self.rollout = rollout
        self.rewards = rewards
        self.options = options
        self.pad_id = pad_id
        self.saves_adapter = saves_adapter
        self._synced_step: int | None = None
        self._micro = 0
        self._micro_step = -1

    # -- one micro-batch ---------------------------------------------------------------------------

    def _seed(self) -> int:
        step = self.state.global_step
        if step != self._micro_step:
            self._micro_step, self._micro = step, 0
        self._micro += 1
        return (int(self.args.seed) * 1_000_003 + step * 1009 + self._micro) % (2**31 - 1)

    def _sync(self, model: Any) -> None:
        if self._synced_step != self.state.global_step:
            self.rollout.sync(self.accelerator.unwrap_model(model), self.processing_class, self.saves_adapter)
            self._synced_step = self.state.global_step

    def _batch(self, rows: list[dict[str, Any]], groups: list[list[Any]], device: Any) -> dict[str, Any]:
        import torch

        g = self.options.num_generations
        prompts = [r["prompt_ids"] for r in rows for _ in range(g)]
        completions = [s.ids for group in groups for s in group]
        p_len, c_len = max(len(p) for p in prompts), max(1, max(len(c) for c in completions))
        pad = self.pad_id
        prompt_ids = torch.tensor([[pad] * (p_len - len(p)) + p for p in prompts], device=device)
        prompt_mask = torch.tensor([[0] * (p_len - len(p)) + [1] * len(p) for p in prompts], device=device)
        completion_ids = torch.tensor([c + [pad] * (c_len - len(c)) for c in completions], device=device)
        completion_mask = torch.tensor(
            [[1] * len(c) + [0] * (c_len - len(c)) for c in completions], device=device
        )
        truncated = torch.tensor([s.truncated for group in groups for s in group], device=device)
        loss_mask = completion_mask
        if self.options.mask_truncated_completions:
            loss_mask = completion_mask * (~truncated).unsqueeze(1).long()
        return {
            "prompt_ids": prompt_ids,
            "prompt_mask": prompt_mask,
            "completion_ids": completion_ids,
            "completion_mask": completion_mask,
            "loss_mask": loss_mask,
            "truncated": truncated,
        }

    def _reference_logps(self, batch: dict[str, Any]) -> Any:
        import contextlib

        import torch

        ref = self.reference
        with torch.no_grad():
            if ref.ref_model is not None or ref.frozen_copy is not None:
                return completion_logps(ref.ref_model or ref.frozen_copy, batch, self.options.temperature)
            policy = self.accelerator.unwrap_model(self.model)
            ctx = policy.disable_adapter() if hasattr(policy, "disable_adapter") else contextlib.nullcontext()
            with ctx:
                return completion_logps(self.model, batch, self.options.temperature)

    def _rewards(self, rows: list[dict[str, Any]], groups: list[list[Any]]) -> Any:
        import torch

        g = self.options.num_generations
        columns: dict[str, list[Any]] = {}
        names = {k for r in rows for k in r["columns"]}
        for key in sorted(names):
            columns[key] = [r["columns"].get(key) for r in rows for _ in range(g)]
        per_func = score_completions(
            self.rewards,
            **columns,
            prompts=[r["messages"] for r in rows for _ in range(g)],
            completions=[s.text for group in groups for s in group],
            completion_ids=[s.ids for group in groups for s in group],
            max_completion_length=self.options.max_completion_length,
        )
        table = torch.tensor(per_func, dtype=torch.float32).T  # (B, F)
        weights = torch.tensor([r.weight for r in self.rewards], dtype=torch.float32)
        total = (table * weights).nansum(dim=1)
        total[torch.isnan(table).all(dim=1)] = float("nan")  # nothing could judge it: no signal
        return table, total

    def compute_loss(
        self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None
    ):

        rows = list(inputs)
        o = self.options
        self._sync(model)
        groups = self.rollout.sample(
            [r["prompt_ids"] for r in rows],
            o.num_generations,
            o.max_completion_length,
            o.temperature,
            o.top_p,
            self._seed(),
            top_k=o.top_k,
        )
        device = next(model.parameters()).device
        batch = self._batch(rows, groups, device)
        table, rewards = self._rewards(rows, groups)
        if model.training:  # the summary's tokens/s: prompt and completion tokens trained on
            self.state.num_input_tokens_seen += int(
                batch["prompt_mask"].sum() + batch["completion_mask"].sum()
            )
        per_token = completion_logps(model, batch, o.temperature)
        mask = batch["loss_mask"].to(per_token.dtype)
        ref = None
        seq_kl = None
        if self.loss_config.beta != 0.0 and self.reference is not None:
            ref = self._reference_logps(batch)
            seq_kl = ((per_token.detach() - ref) * mask).sum(-1).cpu()
        advantages = self.loss_fn.advantages(rewards, o.num_generations, self.loss_config, seq_kl)
        logps = RolloutLogps(
            per_token_logps=per_token,
            mask=mask,
            advantages=advantages.values.to(device),
            ref_per_token_logps=ref,
            num_items_in_batch=mask.sum(),
            max_completion_length=o.max_completion_length,
        )
        result = self.loss_fn(logps, self.loss_config)
        self._record_rollouts(result, table, rewards, advantages, batch)
        return (result.loss, None) if return_outputs else result.loss

    # -- metrics -----------------------------------------------------------------------------------

    def _record_rollouts(
        self, result: Any, table: Any, rewards: Any, advantages: Any, batch: dict[str, Any]
    ) -> None:
        import torch

        from swift_core.rl.losses import nanstd

        prefix = "eval_" if not self.model.training else ""
        m = self._metrics
        for i, reward in enumerate(self.rewards):
            column = table[:, i]
            if (~torch.isnan(column)).any():
                m[f"{prefix}rewards/{reward.name}/mean"].append(float(torch.nanmean(column)))
                m[f"{prefix}rewards/{reward.name}/std"].append(float(nanstd(column).nan_to_num(0.0)))
        if (~torch.isnan(rewards)).any():
            m[f"{prefix}reward"].append(float(torch.nanmean(rewards)))
            m[f"{prefix}reward_std"].append(float(nanstd(rewards).nan_to_num(0.0)))
        g = self.options.num_generations
        tied_groups = advantages.tied.view(-1, g)[:, 0].float()
        m[f"{prefix}frac_reward_zero_std"].append(float(tied_groups.mean()))
        lengths = batch["completion_mask"].sum(-1).float()
        m[f"{prefix}completions/mean_length"].append(float(lengths.mean()))
        m[f"{prefix}completions/max_length"].append(float(lengths.max()))
        m[f"{prefix}completions/clipped_ratio"].append(float(batch["truncated"].float().mean()))
        for key, value in result.metrics.items():
            m[f"{prefix}{key}"].append(float(value))

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        values = self._metrics.get("frac_reward_zero_std") or []
        tied = sum(values) / len(values) if values else 0.0
        super().log(logs, *args, **kwargs)
        if values and tied >= self.options.tied_groups_warning:
            click.echo(
                f"warning: {100 * tied:.0f}% of the groups had all their rewards equal (no learning signal "
                "from them): raise --num_generations or --temperature, or use a reward with finer grades",
                err=True,
            )
