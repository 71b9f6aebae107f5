"""Pulling many small files over SFTP: SftpSource beside OpenSSH's own sftp client.

    .venv/bin/python bench/sftp_pull.py [--files 1000] [--size 2048] [--repeat 3]

Both pull the same files from the same local sshd (tests/sshd.py; install it with
.ci/install-sshd): ours lists the folder with ``SftpSource.scan`` and downloads each file
with ``SftpSource.download`` (to a temporary name, then renamed); OpenSSH runs ``sftp -b``
with ``get -r``. Each figure includes connecting and authenticating. Ours is measured twice:
with ``sync=False``, which writes like OpenSSH's client (no fsync), and with the default
``sync=True`` (fsync of each file and of the folder after the rename), which on a VM disk
costs more than the transfer itself. Medians of --repeat runs are printed as files per
second, and the ratios to OpenSSH.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from sshd import Sshd, SshdUnavailable  # noqa: E402

from gateway.sftp import SftpEndpoint  # noqa: E402
from gateway.sources.sftp import SftpSource  # noqa: E402


def pull_ours(server: Sshd, target: Path, sync: bool) -> int:
    endpoint = SftpEndpoint(server.host, server.port, server.user, server.client_key, server.known_hosts)
    source = SftpSource(endpoint, "pull", ["*.xml"], 0, None)
    try:
        found = source.scan()
        for candidate in found:
            if source.is_settled(candidate):
                source.download(candidate, target / candidate.name, sync=sync)
    finally:
        source.close()
    return len(found)


def pull_openssh(server: Sshd, target: Path, batch: Path) -> None:
    batch.write_text(f"get -r pull {target}\n")
    sftp = shutil.which("sftp")
    if sftp is None:
        raise SystemExit("OpenSSH's sftp client is missing (apt-get install openssh-client)")
    subprocess.run(
        [
            sftp, "-q", "-b", str(batch), "-P", str(server.port), "-i", str(server.client_key),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            f"{server.user}@{server.host}",
        ],
        check=True, stdout=subprocess.DEVNULL, timeout=600,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=2048, help="bytes per file")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    try:
        server = Sshd.create()
    except SshdUnavailable as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="sftp-pull-"))
    try:
        remote = server.root / "pull"
        remote.mkdir()
        for i in range(args.files):
            (remote / f"order-{i:05d}.xml").write_bytes(os.urandom(args.size))
        expected = {p.name: p.read_bytes() for p in remote.iterdir()}

        labels = {"ours, sync=False": "nosync", "ours, sync=True": "sync", "OpenSSH sftp -b": "openssh"}
        times: dict[str, list[float]] = {label: [] for label in labels}
        for run in range(args.repeat):
            for label, kind in labels.items():
                target = work / f"{run}-{kind}"
                target.mkdir()
                started = time.perf_counter()
                if kind == "openssh":
                    pull_openssh(server, target, work / "batch")
                else:
                    assert pull_ours(server, target, sync=kind == "sync") == args.files
                times[label].append(time.perf_counter() - started)
                got = target / "pull" if (target / "pull").is_dir() else target
                assert {p.name: p.read_bytes() for p in got.iterdir()} == expected, label
                shutil.rmtree(target)

        rates = {label: args.files / statistics.median(t) for label, t in times.items()}
        print(f"{args.files} files of {args.size} bytes from a local sshd, median of {args.repeat}:")
        for label, rate in rates.items():
            print(f"  {label:<20} {rate:8.0f} files/s   ({statistics.median(times[label]):.3f} s)")
        nosync, sync, theirs = rates.values()
        print(f"  ratio ours/OpenSSH   {nosync / theirs:8.2f}   (like for like, no fsync; target: at least 0.5)")
        print(f"  ratio with fsync     {sync / theirs:8.2f}")
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
