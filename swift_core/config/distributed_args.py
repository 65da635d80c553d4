"""The launcher's arguments of `swift sft | pt | rlhf`: how many processes, on how many nodes.

ms-swift's environment variables (NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT)
give the same settings; a flag wins over its variable. Which strategy spreads the work (DDP,
FSDP, DeepSpeed, ...) is a capability: its flags come from the strategy plugins' options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from swift_core.config.arguments import arg


@dataclass(kw_only=True)
class DistributedArguments:
    ARG_GROUP: ClassVar[str] = "distributed"

    nproc_per_node: int | None = arg(
        None, help="Processes on this node: Swift starts torchrun itself (env NPROC_PER_NODE)"
    )
    nnodes: int | None = arg(None, help="Nodes taking part (env NNODES)")
    node_rank: int | None = arg(None, help="This node's rank, 0 .. nnodes-1 (env NODE_RANK)")
    master_addr: str | None = arg(None, help="Address of node 0 (env MASTER_ADDR; default 127.0.0.1)")
    master_port: int | None = arg(None, help="Port on node 0 (env MASTER_PORT; default 29500)")
