"""``python -m rewardgen``: the ``rewardgen`` command."""

from rewardgen.cli import main

if __name__ == "__main__":
    main()
