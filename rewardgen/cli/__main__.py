from rewardgen.cli import main

main()
