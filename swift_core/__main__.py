"""`python -m swift_core` runs the same CLI as the `swift` console script."""

from swift_core.cli.main import main

if __name__ == "__main__":
    main()
