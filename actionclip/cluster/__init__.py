"""Running the engine over a cluster: decoding in CPU tasks, the model in GPU actors (`ray_data`, on Ray Data)."""
