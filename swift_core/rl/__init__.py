"""Online RL: `swift rlhf --rlhf_type grpo` (and the GRPO family) with reward-function plugins.

A step samples `--num_generations` completions per prompt through an inference engine (any engine
plugin, chosen by `--rollout_engine`), scores them with the reward functions of `--reward_funcs`,
turns the rewards into advantages and trains the policy with the loss plugin `--rlhf_type` names
(descriptor `scores="rollouts"`); the policy's weights then go back to the engine. Modules:

- `options`: the family's options (light: imported at start-up by the built-in plugin);
- `base`: `RolloutLogps`, the `RolloutLoss` interface;
- `losses`: GRPO, BNPO, Dr. GRPO, DAPO, GSPO, RLOO (TRL 1.16-exact);
- `rewards`: building and calling reward functions; `builtin_rewards`, `math_answer`: the built-ins;
- `rollout`: rollouts through the engine protocol and the weight sync;
- `data`, `trainer`, `pipeline`: prompt rows, the trainer, `run_online_rl`.
"""
