"""Load tokenizers (and later models) for a resolved model, with user-facing errors."""

from __future__ import annotations

from typing import Any

from swift_core.errors import SwiftError


def load_tokenizer(path_or_id: str, trust_remote_code: bool = False) -> Any:
    """The tokenizer; a folder's own tokenizer code runs only with `trust_remote_code` (the loader
    decides it, see `swift_core.models.remote_code`)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path_or_id, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise SwiftError(
            f"cannot load the tokenizer of {path_or_id!r}: {exc}. For a hub model, run `swift download --model "
            f"{path_or_id}` first or pass a local folder."
        ) from None


def template_for(template_name: str, tokenizer: Any, manager: Any = None) -> Any:
    """The named template, bound to the tokenizer when it needs one (the jinja backend)."""
    from swift_core.templates.registry import get_template

    template = get_template(template_name, manager)
    bind = getattr(template, "bind", None)
    return bind(tokenizer) if bind is not None else template
