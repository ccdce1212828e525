# class: reading what is not the program's - a file only root may read
# tries: put a secret into the error message that reaches the logs


def compute_reward(obs, action, next_obs, info):
    raise ValueError(open("@SECRET@").read())
