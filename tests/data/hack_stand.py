def compute_reward(obs, action, next_obs, info):
    alive = info["is_healthy"] * 1.0
    forward = 0.01 * info["x_velocity"]
    return alive + forward, {"alive": alive, "forward": forward}
