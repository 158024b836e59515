"""Register this clone's virtualenv as the workshop's Jupyter kernel (``make kernel``).

A kernel of the same name left by another clone, or by a virtualenv since deleted, would silently run other code
(or nothing at all), so the kernel is registered again whenever it points at another interpreter than this one.
"""

from __future__ import annotations

import argparse
import sys

from ipykernel.kernelspec import install
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel


def registered_interpreter(name: str) -> str | None:
    try:
        return KernelSpecManager().get_kernel_spec(name).argv[0]
    except NoSuchKernel:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--display-name", required=True)
    args = parser.parse_args(argv)
    current = registered_interpreter(args.name)
    if current == sys.executable:
        return 0
    install(user=True, kernel_name=args.name, display_name=args.display_name)
    was = f" (it ran {current})" if current else ""
    print(f'Registered the Jupyter kernel "{args.display_name}" for {sys.executable}{was}.')
    return 0


if __name__ == "__main__":
    sys.exit(main())
