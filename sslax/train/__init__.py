"""The train core: state pytree, the one jitted step, mesh, checkpoints, metrics, loop."""
from sslax.train.checkpoint import Checkpointer
from sslax.train.mesh import make_mesh
from sslax.train.state import TrainState, build_optimizer, create_train_state, split_model
from sslax.train.step import make_train_step, state_sharding

__all__ = ["Checkpointer", "TrainState", "build_optimizer", "create_train_state", "make_mesh", "make_train_step",
           "split_model", "state_sharding"]
