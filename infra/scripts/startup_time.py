#!/usr/bin/env python3
"""Time from starting the (built) local stack binary to its port accepting connections.

Usage: cargo build --release -p statecast-local && python3 infra/scripts/startup_time.py [runs]
"""
import signal
import socket
import statistics
import subprocess
import sys
import time

BINARY = "./target/release/statecast-local"
PORT = 8799


def one_start() -> float:
    started = time.perf_counter()
    process = subprocess.Popen([BINARY, "--port", str(PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", PORT)) == 0:
                    return (time.perf_counter() - started) * 1000
            if process.poll() is not None:
                raise SystemExit(f"{BINARY} exited with {process.returncode}")
            time.sleep(0.001)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    times = sorted(one_start() for _ in range(runs))
    p90 = times[round(0.9 * (len(times) - 1))]
    print(f"runs={runs} median={statistics.median(times):.1f}ms p90={p90:.1f}ms min={times[0]:.1f}ms max={times[-1]:.1f}ms")


if __name__ == "__main__":
    main()
