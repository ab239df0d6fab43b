from leeway.cli import main

main()
