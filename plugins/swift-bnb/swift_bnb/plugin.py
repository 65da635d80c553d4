"""Hooks of swift-bnb. Light on purpose: torch and bitsandbytes are imported only when the
quantizer is selected."""

from swift_bnb.options import BnbOptions
from swift_core import hookimpl
from swift_core.descriptors import QuantizerDescriptor


@hookimpl
def register_quantizers(register):
    register(
        QuantizerDescriptor(
            name="bnb",
            description="bitsandbytes: 4-bit NF4/FP4 or 8-bit int8, at load time (QLoRA) or as an exported checkpoint",
            factory="swift_bnb.quantizer:BnbQuantizer",
            requires=("bitsandbytes",),
            load_time=True,
            export_time=True,
            aliases=("bitsandbytes",),
            options=BnbOptions,
        )
    )
