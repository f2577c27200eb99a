"""Reproduce the research's claims (docs/reproduction.md): run the pending studies, or rebuild the page.

    python benchmarks/reproduce.py status                       # what is finished, what is pending (minutes)
    python benchmarks/reproduce.py run --claims b,f,a,d,e,c     # run pending jobs in that order
    python benchmarks/reproduce.py run --claims e --max-minutes 90
    python benchmarks/reproduce.py report                       # docs/reproduction.md from the committed results

Every finished run is one JSON line in benchmarks/results/reproduction_<claim>.jsonl (with the commit, machine and
date); a run already there is skipped, so ``run`` resumes after a kill and on a new machine. ``report`` reads only
those files (and benchmarks/results/completion*.jsonl for claim a): every number on the page is regenerated from
the committed raw results by that one command.

Run one ``run`` at a time on a 2-core machine: two CPU-heavy jobs at once slow each other 2-4x.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "reproduction"))
from common import RESULTS, Store  # noqa: E402


def jobs(claims: list[str]):
    from studies import CLAIMS

    unknown = [c for c in claims if c not in CLAIMS]
    if unknown:
        raise SystemExit(f"error: unknown claim(s) {', '.join(unknown)}; valid: {', '.join(CLAIMS)}")
    for claim in claims:
        store = Store(RESULTS / f"reproduction_{claim}.jsonl")
        done = store.keys()
        for job in CLAIMS[claim]():
            yield job, store, job.key in done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("run", "status", "report"))
    parser.add_argument("--claims", default="b,f,a,d,e,c",
                        help="Comma list of claims (a, b, c, d, e, f), in run order.")
    parser.add_argument("--only", default="", help="Run only jobs whose key contains this text.")
    parser.add_argument("--max-minutes", type=float, default=0, help="Start no new job after this many minutes.")
    parser.add_argument("--docs", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "reproduction.md")
    args = parser.parse_args()
    claims = [c.strip() for c in args.claims.split(",") if c.strip()]
    if args.command == "report":
        sys.path.insert(0, str(Path(__file__).resolve().parent / "reproduction"))
        from report import write_report

        write_report(args.docs)
        print(f"wrote {args.docs}")
        return
    started = time.perf_counter()
    pending_minutes = 0.0
    for job, store, done in jobs(claims):
        if args.command == "status" or done or args.only not in job.key:
            if args.command == "status":
                print(f"{'done   ' if done else 'pending'} {job.key}" + ("" if done else f"  (~{job.minutes:.0f} min)"))
                pending_minutes += 0 if done else job.minutes
            continue
        if args.max_minutes and (time.perf_counter() - started) / 60 > args.max_minutes:
            print(f"stopping: --max-minutes {args.max_minutes:g} reached", flush=True)
            break
        print(f"=== {job.key}", flush=True)
        t0 = time.perf_counter()
        row = job.run()
        store.append({"key": job.key, **row, "job_seconds": round(time.perf_counter() - t0, 1)})
        print(f"=== done {job.key} in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    if args.command == "status":
        print(f"pending: about {pending_minutes:.0f} min on 2 cores")


if __name__ == "__main__":
    main()
