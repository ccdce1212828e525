# class: the error text itself - terminal escape sequences and a huge message
# tries: retitle and clear the user's terminal, and flood the logs, through the error message
# expect: a printable, bounded line (nothing is refused: the text itself is the attack)
def compute_reward(obs, action, next_obs, info):
    raise ValueError("\x1b]0;pwned\x07\x1b[2J\x1b[H" + "x" * 10_000_000)
