"""Instructions per gateway call, counted by valgrind's callgrind: a figure that does not drift.

    .venv/bin/python bench/instructions.py        # or: make bench-instructions

Timings on a shared virtual machine move by tens of percent from one minute to the next, so a
change of a few percent in the gateway's own code cannot be seen in ``make bench``. Callgrind
counts the instructions a process executes instead (kernel time not included), and the same
build gives the same count within about 1%. This starts the fake provider, then the gateway
and the floor (``bench/floor_app.py``) one after the other under callgrind, warms each up
with calls at one connection, counts the instructions of the next calls only, and prints
them per call. The gateway's count less the floor's is this project's own per-call code.

Needs valgrind (``apt-get install -y valgrind``) and PostgreSQL (as ``make bench``). Under
callgrind a call is about 50 times slower: the default run (three rounds, the two servers
counted in turns) takes about a minute and a half.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import gateway_bench as bench  # noqa: E402

# Under valgrind the server takes a while to import Django and start listening.
START_TIMEOUT = 300


def count(
    name: str,
    env: dict[str, str],
    fake_port: int,
    tokens: bench.Tokens,
    warm_up: int,
    calls: int,
    stream: bool = False,
) -> float:
    """Instructions per call of one server (``gateway`` or ``floor``) under callgrind."""
    port = bench.free_port()
    command, env, targets = bench.server(name, env, fake_port, tokens, port)
    target = targets[0]  # the gateway as a person no budget counts
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        valgrind = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",  # counting starts after the warm-up
            f"--callgrind-out-file={out}",
        ]
        process = bench.start(command, env, port, wrapper=valgrind, timeout=START_TIMEOUT)
        try:
            failed = asyncio.run(_calls(target, warm_up, stream))
            _control("--instr=on", process.pid)
            failed += asyncio.run(_calls(target, calls, stream))
            _control("--instr=off", process.pid)
            _control("--dump", process.pid)
        finally:
            process.terminate()
            process.wait(timeout=120)
        if failed:
            raise SystemExit(f"{name}: {failed} of {warm_up + calls} calls failed")
        return _instructions(Path(folder)) / calls


async def _calls(target: bench.Target, number: int, stream: bool) -> int:
    """``number`` calls (streamed, 20 chunks, or not), one after the other; how many
    failed."""
    (connection,) = await bench.connect(target.port, 1)
    raw = target.request(stream=stream)
    failed = 0
    for _ in range(number):
        failed += not (await connection.request(raw)).ok
    connection.transport.close()  # type: ignore[union-attr]
    return failed


def _control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


def _instructions(folder: Path) -> int:
    """The instructions counted between --instr=on and --instr=off: the dump made then."""
    dumps = [path for path in folder.iterdir() if path.name != "callgrind.out"]
    for line in dumps[0].read_text().splitlines() if len(dumps) == 1 else ():
        if line.startswith("totals:"):  # ("summary:" holds what preceded the dump: 0)
            return int(line.split()[1])
    raise SystemExit("callgrind wrote no count for the calls")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm-up", type=int, default=300, help="calls before counting")
    parser.add_argument("--calls", type=int, default=1000, help="calls counted")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="gateway and floor counted alternately this many times; the medians are reported",
    )
    parser.add_argument(
        "--stream", action="store_true", help="count streamed calls (20 chunks) instead"
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed: apt-get install -y valgrind", file=sys.stderr)
        return 1
    env = bench.environment(bench.DATABASE)
    fake_port = bench.free_port()
    print("Preparing the database and starting the fake provider...")
    tokens = bench.prepare_database(env, fake_port)
    fake = bench.start(["fake_provider", "--chunk-delay", "0"], env, fake_port)
    # On a host busy with other work a count drifts by up to ~2% (more loop turns per call):
    # the two are counted in turns, and the medians reported.
    per_call: dict[str, list[float]] = {"gateway": [], "floor": []}
    try:
        for number in range(1, args.rounds + 1):
            for name, counts in per_call.items():
                print(
                    f"Round {number}/{args.rounds}: counting the {name} under callgrind "
                    f"({args.warm_up} + {args.calls} calls)..."
                )
                counts.append(
                    count(name, env, fake_port, tokens, args.warm_up, args.calls, args.stream)
                )
            print(
                f"  gateway {per_call['gateway'][-1] / 1000:.1f}k, floor {counts[-1] / 1000:.1f}k"
            )
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    gateway, floor = (statistics.median(counts) for counts in per_call.values())
    print(
        f"\nInstructions per {'streamed (20 chunks)' if args.stream else 'non-stream'} call, "
        f"one connection (user space, callgrind, median of "
        f"{args.rounds} round(s)):\n"
        f"  gateway {gateway / 1000:.1f}k, floor {floor / 1000:.1f}k: "
        f"this project's per-call code {(gateway - floor) / 1000:.1f}k"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
