"""How long the command lines take to print --help, beside `import torch` alone (the floor: the
package's face imports torch), measured side by side in one run, interleaved.

    python bench/bench_startup.py --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "import torch": [sys.executable, "-c", "import torch"],
    "bulk_attack --help": [sys.executable, "-m", "intriguing_fast.bulk_attack", "--help"],
    "reproduce --help": [sys.executable, "-m", "intriguing_fast.reproduce", "--help"],
}


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs of each command, interleaved")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():  # one warm-up each: the page cache, not the imports, is cold
        seconds(command)
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(seconds(command))
    floor = statistics.median(times["import torch"])
    print("| command | min s | median s | median / import torch |\n|---|---|---|---|")
    for name, runs in times.items():
        median = statistics.median(runs)
        print(f"| `{name}` | {min(runs):.2f} | {median:.2f} | {median / floor:.2f} |")


if __name__ == "__main__":
    main()
