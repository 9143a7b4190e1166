"""Train one method on several worker processes, and a local launcher for them.

``python -m xcatrec.cluster worker --dataset NAME --method M [--option k=v ...] [--out DIR]`` trains
one method as one worker of the cluster that ``TF_CONFIG`` describes (or alone, without it); worker 0
saves the model to ``--out`` and prints one JSON line (validation NDCG@10, epochs, seconds).

``python -m xcatrec.cluster local --workers 2 -- --dataset NAME --method M ...`` starts that many
workers on free localhost ports, each with its own ``TF_CONFIG``, waits for them, and stops them all
with one error naming the worker when any of them fails (a dead worker would leave the others
waiting in their next all-reduce). On real machines, start the worker command on each host with the
cluster's ``TF_CONFIG`` instead.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from xcatrec.errors import ConfigError, XcatrecError


class WorkerFailed(XcatrecError):
    """A worker of a local cluster exited with an error (the others were stopped)."""


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on localhost (held open together while choosing)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("localhost", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(workers: Sequence[str], index: int) -> str:
    """The ``TF_CONFIG`` JSON of worker ``index`` of a cluster of ``workers``."""
    return json.dumps({"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}})


class LocalCluster:
    """``n`` worker processes of ``python -m xcatrec.cluster worker ARGS`` on localhost.

    Each worker's stderr goes to ``log_dir/worker-<i>.log``. Use :meth:`start`, then :meth:`wait`;
    :meth:`kill` stops one worker abruptly (to test what a failure does).
    """

    def __init__(self, n_workers: int, worker_args: Sequence[str], *, log_dir: str | Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        if n_workers < 1:
            raise ConfigError(f"A cluster needs at least one worker, got {n_workers}.", "Pass --workers 2 or more.")
        self.n_workers, self.worker_args = n_workers, list(worker_args)
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="xcatrec-cluster-"))
        self.env = dict(os.environ if env is None else env)
        self.processes: list[subprocess.Popen] = []

    def start(self) -> "LocalCluster":
        """Start every worker; returns ``self``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        workers = [f"localhost:{p}" for p in free_ports(self.n_workers)]
        for i in range(self.n_workers):
            env = dict(self.env, TF_CONFIG=tf_config(workers, i))
            with open(self.log_path(i), "w") as log:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "xcatrec.cluster", "worker", *self.worker_args],
                    stdout=subprocess.PIPE if i == 0 else subprocess.DEVNULL, stderr=log, env=env, text=True))
        return self

    def log_path(self, index: int) -> Path:
        """Where worker ``index`` writes its stderr."""
        return self.log_dir / f"worker-{index}.log"

    def kill(self, index: int) -> None:
        """Kill worker ``index`` at once (SIGKILL)."""
        self.processes[index].kill()

    def stop(self) -> None:
        """Stop every worker still running."""
        for p in self.processes:
            if p.poll() is None:
                p.kill()
        for p in self.processes:
            p.wait()

    def wait(self, timeout: float = 600) -> str:
        """Wait until every worker has finished; returns worker 0's standard output.

        Raises:
            WorkerFailed: A worker exited with an error or the time ran out; all workers are stopped.
        """
        deadline = time.monotonic() + timeout
        try:
            while True:
                codes = [p.poll() for p in self.processes]
                failed = [i for i, c in enumerate(codes) if c not in (None, 0)]
                if failed:
                    i = failed[0]
                    raise WorkerFailed(
                        f"Worker {i} of {self.n_workers} exited with status {codes[i]}; the other workers "
                        f"were stopped. Its last log lines:\n{self._tail(i)}",
                        f"Read {self.log_path(i)} for the whole log, fix the cause and start the cluster again.")
                if all(c == 0 for c in codes):
                    return self.processes[0].stdout.read() if self.processes[0].stdout else ""
                if time.monotonic() > deadline:
                    raise WorkerFailed(f"The cluster did not finish within {timeout:.0f} s.",
                                       f"Give it more time, or read the logs in {self.log_dir}.")
                time.sleep(0.2)
        finally:
            self.stop()

    def _tail(self, index: int, lines: int = 8) -> str:
        text = self.log_path(index).read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:]) or "(empty)"


def _worker(args: argparse.Namespace) -> int:
    from xcatrec.training.distribute import cluster_from_env, cluster_strategy

    cluster = cluster_from_env()
    cluster_strategy()  # before any other TensorFlow work: it sets up the collective ops
    from xcatrec.data import load_dataset
    from xcatrec.method_options import parse_options
    from xcatrec.models import make_model
    from xcatrec.testing import make_tiny_dataset
    from xcatrec.training.selection import ndcg_validation

    dataset = make_tiny_dataset() if args.dataset == "tiny" else load_dataset(args.dataset)
    model = make_model(args.method, dataset.sizes, **parse_options(args.method, args.option))
    start = time.perf_counter()
    model.fit(dataset, verbose=True)
    seconds = time.perf_counter() - start
    if cluster is None or cluster.chief:
        if args.out:
            model.save(args.out)
        print(json.dumps({"workers": len(cluster.workers) if cluster else 1, "fit_seconds": round(seconds, 3),
                          "epochs": model.report.epochs, "loss": model.report.history.get("loss", []),
                          "valid_ndcg@10": ndcg_validation(model, dataset).score()}), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m xcatrec.cluster``."""
    parser = argparse.ArgumentParser(prog="python -m xcatrec.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="train one method as one worker of the TF_CONFIG cluster")
    worker.add_argument("--dataset", required=True, help="a data set name (see `python -m xcatrec data list`), "
                        "or 'tiny' for the package's small test data")
    worker.add_argument("--method", required=True, help="a Keras method, e.g. bpr-mf, cmf, shared-bottom")
    worker.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a config field of the method (repeatable), e.g. --option epochs=5")
    worker.add_argument("--out", help="folder where worker 0 saves the trained model")
    local = sub.add_parser("local", help="start N workers on this machine and wait for them")
    local.add_argument("--workers", type=int, default=2, help="number of worker processes (default 2)")
    local.add_argument("--timeout", type=float, default=3600, help="seconds before giving up (default 3600)")
    local.add_argument("worker_args", nargs=argparse.REMAINDER, help="-- then the worker's arguments")
    args = parser.parse_args(argv)
    try:
        if args.command == "worker":
            return _worker(args)
        rest = args.worker_args[1:] if args.worker_args[:1] == ["--"] else args.worker_args
        cluster = LocalCluster(args.workers, rest).start()
        print(f"{args.workers} workers started; logs in {cluster.log_dir}", file=sys.stderr)
        sys.stdout.write(cluster.wait(args.timeout))
        return 0
    except XcatrecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
