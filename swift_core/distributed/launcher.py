"""`swift sft --nproc_per_node N`: Swift starts torchrun itself, so the user never does.

The parent process parses and checks the arguments first (a mistake costs no process launch),
then runs torchrun (`torch.distributed.run`, in-process) on `-m swift_core <the same argv>`.
The workers find torchrun's variables (LOCAL_RANK, WORLD_SIZE) and run the command; they load
plugins under the same policy because the global options already live in the environment
(`swift_core.cli.main.apply_global_options`). A process that torchrun (or any launcher) started
is never launched again.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from dataclasses import dataclass

from swift_core.errors import SwiftError

ENV = {
    "nproc_per_node": "NPROC_PER_NODE",
    "nnodes": "NNODES",
    "node_rank": "NODE_RANK",
    "master_addr": "MASTER_ADDR",
    "master_port": "MASTER_PORT",
}
LAUNCHER_PID = "SWIFT_LAUNCHER_PID"  # set for the workers of `launch_if_needed`
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class LaunchPlan:
    nproc_per_node: int
    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    def torchrun_args(self) -> list[str]:
        return [
            f"--nproc_per_node={self.nproc_per_node}",
            f"--nnodes={self.nnodes}",
            f"--node_rank={self.node_rank}",
            f"--master_addr={self.master_addr}",
            f"--master_port={self.master_port}",
        ]


def already_launched() -> bool:
    """torchrun (or another launcher: deepspeed, accelerate, mpirun via torch) started this process."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def _value(args: object, name: str, default: str | None) -> str | None:
    flag = getattr(args, name, None)
    if flag is not None:
        return str(flag)
    return os.environ.get(ENV[name]) or default


def _int(args: object, name: str, default: int) -> int:
    raw = _value(args, name, str(default))
    try:
        value = int(str(raw))
    except ValueError:
        raise SwiftError(f"--{name} (or {ENV[name]}): expected an integer, got {raw!r}") from None
    return value


def launch_plan(args: object) -> LaunchPlan | None:
    """What to start, or None when this process should simply run (one process, or already launched)."""
    if already_launched():
        return None
    plan = LaunchPlan(
        nproc_per_node=_int(args, "nproc_per_node", 1),
        nnodes=_int(args, "nnodes", 1),
        node_rank=_int(args, "node_rank", 0),
        master_addr=_value(args, "master_addr", "127.0.0.1") or "127.0.0.1",
        master_port=_int(args, "master_port", 29500),
    )
    if plan.nproc_per_node < 1:
        raise SwiftError(f"--nproc_per_node must be >= 1 (got {plan.nproc_per_node})")
    if plan.nnodes < 1:
        raise SwiftError(f"--nnodes must be >= 1 (got {plan.nnodes})")
    if not 0 <= plan.node_rank < plan.nnodes:
        raise SwiftError(f"--node_rank must be in 0 .. {plan.nnodes - 1} (got {plan.node_rank})")
    if not 0 < plan.master_port < 65536:
        raise SwiftError(f"--master_port must be a port number (got {plan.master_port})")
    return plan if plan.world_size > 1 else None


def torchrun_command(plan: LaunchPlan, argv: list[str]) -> list[str]:
    """The equivalent shell command (for messages and tests; `launch_if_needed` runs it in-process)."""
    return [sys.executable, "-m", "torch.distributed.run", *plan.torchrun_args(), "-m", "swift_core", *argv]


class WorkersFailed(SwiftError):
    """A worker of a launched run failed; it printed why. The exit code is the worker's."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def launch_if_needed(args: object, argv: list[str] | None = None) -> None:
    """Run this command as torchrun when the arguments ask for more than one process.

    `argv` is the command line after the program name (default: `sys.argv[1:]`); the workers get
    it unchanged (a `--nproc_per_node` in it is ignored there: they are already launched). torchrun
    runs in this process; when it returns, so does the command: `SystemExit(0)` on success, a
    one-line `WorkersFailed` with the worker's exit code otherwise (its own message is above).
    """
    if already_launched():
        die_with_launcher()
    plan = launch_plan(args)
    if plan is None:
        return
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    command = [*plan.torchrun_args(), "-m", "swift_core", *(sys.argv[1:] if argv is None else argv)]
    sys.stderr.write(
        f"launching {plan.nproc_per_node} process(es) on node {plan.node_rank} of {plan.nnodes} "
        f"(world size {plan.world_size}, master {plan.master_addr}:{plan.master_port})\n"
    )
    sys.stderr.flush()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ[LAUNCHER_PID] = str(os.getpid())
    try:
        torchrun.run(torchrun.parse_args(command))
    except SignalException as exc:  # torchrun has stopped the workers; no traceback of its loop
        raise WorkersFailed(
            f"the run stopped: this launcher got {signal.Signals(exc.sigval).name}; its workers were stopped",
            exit_code=128 + int(exc.sigval),
        ) from None
    except ChildFailedError as exc:
        codes = sorted({int(f.exitcode) for f in exc.failures.values()})
        worst = next((c for c in codes if c not in (0, 2)), codes[0] if codes else 1)
        ranks = ", ".join(str(rank) for rank in sorted(exc.failures))  # keyed by global rank
        raise WorkersFailed(
            f"the run stopped: rank(s) {ranks} exited with {worst}", exit_code=worst
        ) from None
    raise SystemExit(0)


def die_with_launcher() -> None:
    """Make this worker end when the Swift launcher that started it ends, however that ends.

    torchrun stops its workers when it is interrupted or terminated, but a launcher killed outright
    (SIGKILL, a job's time limit) leaves them running, each in a session of its own: they hold the
    accelerator, the port and the build locks of the next run. Linux's parent-death signal ends
    them with it. Workers of another launcher (torchrun, deepspeed, mpirun) are left as they are.
    """
    launcher = os.environ.get(LAUNCHER_PID, "")
    if not sys.platform.startswith("linux") or not launcher.isdigit() or os.getppid() != int(launcher):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != int(launcher):  # it ended before the signal was set
        raise SwiftError("the launcher of this worker has ended; stopping")


def planned_world_size(args: object) -> int:
    """The number of processes the run will have: planned here, or set by the launcher that started us."""
    from swift_core.distributed.ranks import world_size

    plan = launch_plan(args)
    return plan.world_size if plan is not None else world_size()
