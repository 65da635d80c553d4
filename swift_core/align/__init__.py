"""Alignment: preference losses (plugins) and the preference / reward-model trainers."""

from swift_core.align.base import AlignmentLoss, LossConfig, LossOutput, PreferenceLogps

__all__ = ["AlignmentLoss", "LossConfig", "LossOutput", "PreferenceLogps"]
