"""`python -m cfpairs verify|inspect STORE`: the reader's own checks, with h5py and numpy only
(the full programs, `cfbuild` and `cftrain`, need the build and train extras)."""

from __future__ import annotations

import argparse
import json
import sys

from cfpairs.check import summarize, upgrade_note, verify_store
from cfpairs.errors import UserError
from cfpairs.store import Store


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cfpairs", description="Check or summarise a cfpairs store.")
    parser.add_argument("command", choices=["verify", "inspect"])
    parser.add_argument("store")
    parser.add_argument("--allow-external", action="store_true",
                        help="Read region features the store keeps in other feature files (refused otherwise).")
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            problem = verify_store(args.store, args.allow_external)
            if problem:
                print(f"FAILED: {problem}", file=sys.stderr)
                return 1
            print("ok")
            with Store(args.store, args.allow_external) as store:
                note = upgrade_note(store)
            if note:
                print(f"note: {note}", file=sys.stderr)
            return 0
        with Store(args.store, args.allow_external) as store:
            print(json.dumps(summarize(store), indent=2))
        return 0
    except UserError as exc:
        print(f"python -m cfpairs: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
