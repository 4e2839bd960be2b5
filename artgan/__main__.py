"""``python -m artgan`` (and ``torchrun -m artgan``) run the command line."""

from .cli import main

if __name__ == "__main__":
    main()
