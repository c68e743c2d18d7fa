from edgebit.cli.main import main

main()
