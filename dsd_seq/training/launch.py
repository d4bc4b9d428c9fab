"""Start ``dsd-seq train`` (or ``plan-run``) as several processes through torchrun, for one or many nodes.

``dsd-seq train --nproc-per-node 4 --nnodes 2 --node-rank 0 --master-addr host0 ...`` (run once on each
node, with its own ``--node-rank``) replaces itself with
``python -m torch.distributed.run ... -m dsd_seq.cli train ...`` (the same arguments minus the launch
options); inside torchrun, :mod:`dsd_seq.training.distributed` joins the process group. One process and one node
stay the plain single process, with no process group at all.
"""

from __future__ import annotations

import os
import sys

#: the launch options of ``dsd-seq train`` and ``plan-run`` (each takes a value), removed from the relaunched command
LAUNCH_OPTIONS = ("--nproc-per-node", "--nnodes", "--node-rank", "--master-addr", "--master-port")


def needs_torchrun(nproc_per_node: int, nnodes: int) -> bool:
    """True when more than one process is asked for and this process is not already one of them."""
    return (nproc_per_node > 1 or nnodes > 1) and "RANK" not in os.environ


def strip_launch_options(argv: list[str]) -> list[str]:
    """``argv`` without the launch options and their values (``--opt v`` and ``--opt=v`` forms)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in LAUNCH_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{o}=" for o in LAUNCH_OPTIONS)):
            out.append(arg)
    return out


def torchrun_command(
    train_argv: list[str],
    nproc_per_node: int,
    nnodes: int,
    node_rank: int,
    master_addr: str,
    master_port: int,
) -> list[str]:
    """The torchrun command line running ``dsd_seq.cli`` with ``train_argv`` on this node.

    A single node uses torchrun's ``--standalone`` rendezvous (a free local port); several nodes meet at
    ``master_addr:master_port``, where node 0 listens."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc_per_node)]
    if nnodes == 1:
        command.append("--standalone")
    else:
        command += [
            "--nnodes",
            str(nnodes),
            "--node-rank",
            str(node_rank),
            "--master-addr",
            master_addr,
            "--master-port",
            str(master_port),
        ]
    return [*command, "-m", "dsd_seq.cli", *train_argv]


def relaunch(
    argv: list[str], nproc_per_node: int, nnodes: int, node_rank: int, master_addr: str, master_port: int
) -> None:
    """Replace this process with torchrun (Ctrl-C then reaches torchrun, which stops every rank)."""
    if nnodes > 1 and not 0 <= node_rank < nnodes:
        raise ValueError(f"--node-rank {node_rank} must be in [0, {nnodes}) for --nnodes {nnodes}")
    if nnodes > 1 and not master_addr:
        raise ValueError("--nnodes > 1 needs --master-addr: the address of node 0, reachable from every node")
    command = torchrun_command(
        strip_launch_options(argv), nproc_per_node, nnodes, node_rank, master_addr, master_port
    )
    sys.stdout.flush()
    os.execv(command[0], command)
