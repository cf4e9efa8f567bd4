"""moto's S3 server, seeded through its backend, for a benchmark to run in a child process.

A server in the client's process shares its GIL: every bit of client CPU would slow the server, except
for clients that release the GIL (obstore), so the comparison would be unfair. Seeding through
moto's backend takes about a second for 10,000 keys, where PUTs over HTTP would take minutes.

It creates the buckets, puts the ``--tree`` keys (``simulator.tree_keys``, empty bodies) in the first,
starts serving on 127.0.0.1, prints ``serving N keys`` (N counted in the backend) and serves until
terminated.

    python -m benchmarks.moto_seeded --port 5000 --bucket bench-list --bucket bench-put --tree 20 500
"""

from __future__ import annotations

import argparse
import logging
import threading

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

from benchmarks.simulator import tree_keys

REGION = "us-east-1"


def seed(buckets: list[str], prefixes: int, per_prefix: int) -> int:
    """Create ``buckets``, fill the first with the key tree and return how many keys it holds."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for name in buckets:
        backend.create_bucket(name, REGION)
    for key in tree_keys(prefixes, per_prefix):
        backend.put_object(buckets[0], key, b"")
    return len(backend.get_bucket(buckets[0]).keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", action="append", required=True, help="create this bucket (repeatable)")
    parser.add_argument("--tree", nargs=2, type=int, default=[0, 0], metavar=("PREFIXES", "KEYS"))
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    seeded = seed(args.bucket, *args.tree)
    ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False).start()
    print(f"serving {seeded} keys", flush=True)
    threading.Event().wait()  # the server's thread serves; SIGTERM's default action ends the process


if __name__ == "__main__":
    main()
