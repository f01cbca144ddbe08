"""Data-parallel training under ``python -m paddle.distributed.launch``.

The launcher starts one process per GPU (or, on CPU, per ``--nproc_per_node``) and tells each its
rank through ``PADDLE_*`` environment variables. With one process every function here is a no-op,
so ``fit`` runs the same code either way: ``wrap`` initialises the process group and returns
``paddle.DataParallel(model)`` (gradients all-reduced in backward), training batches come from a
``DistributedBatchSampler`` (each rank a different shard of each epoch's shuffle), each rank
evaluates its own slice of the validation set with rank 0's batch-norm statistics (``sync_state``)
and ``reduce_sums`` adds the counts up, and only
rank 0 writes logs and checkpoints (``is_main``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import paddle
import paddle.distributed as dist


def world_size() -> int:
    return dist.get_world_size()  # 1 unless started by the launcher (PADDLE_TRAINERS_NUM)


def rank() -> int:
    return dist.get_rank()


def is_main() -> bool:
    """Rank 0: the one process that logs and writes checkpoints."""
    return rank() == 0


def wrap(model: paddle.nn.Layer, find_unused: bool = False) -> paddle.nn.Layer:
    """``paddle.DataParallel(model)`` after joining the process group, or ``model`` alone. Keep
    the unwrapped model for evaluation and checkpoints (its state-dict keys have no prefix)."""
    if world_size() <= 1:
        return model
    if not dist.is_initialized():
        dist.init_parallel_env()  # NCCL on GPUs, gloo on CPU
    # find_unused: parameters frozen by --freeze-epochs get no gradient, and the all-reduce
    # must not wait for them (it costs a graph walk per step, so only when needed).
    return paddle.DataParallel(model, find_unused_parameters=find_unused)


def sync_state(model: paddle.nn.Layer) -> None:
    """Give every rank rank 0's state. DataParallel keeps the trained weights equal on all
    ranks, but batch-norm running statistics (non-trainable parameters in Paddle, not buffers)
    follow each rank's own batches, while the checkpoint holds rank 0's: scoring with rank 0's
    state makes the all-reduced validation score the score of the checkpoint that is saved."""
    if world_size() <= 1:
        return
    for tensor in model.state_dict().values():
        dist.broadcast(tensor, src=0)


def shard_indices(n: int) -> Sequence[int]:
    """This rank's slice of ``n`` evaluation samples: every world_size-th from its rank. Unlike
    DistributedBatchSampler's padding, no sample is counted twice."""
    return range(rank(), n, world_size())


def reduce_sums(values: Sequence[float]) -> np.ndarray:
    """Element-wise sum of ``values`` over all ranks (float64 on the host side)."""
    local = np.asarray(values, np.float64)
    if world_size() <= 1:
        return local
    tensor = paddle.to_tensor(local.astype(np.float32))
    dist.all_reduce(tensor)
    return tensor.numpy().astype(np.float64)
