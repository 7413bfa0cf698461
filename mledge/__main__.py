from mledge.cli import main

main()
