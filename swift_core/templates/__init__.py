"""Chat templates: messages -> text segments (trainable or not) -> token ids and labels."""

from swift_core.templates.base import ChatTemplate, Segment

__all__ = ["ChatTemplate", "Segment"]
