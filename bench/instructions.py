"""Instructions the app executes per buyer's purchase, per signed-in page and per scan, counted by callgrind.

    .venv/bin/python bench/instructions.py [--small 4 --large 24] [--journey purchase|pay-now|page|checkin|both|all]
    .venv/bin/python bench/instructions.py --against bench/out/src-<commit>   # two versions side by side

Timings on this shared 2-core machine drift by ±30 % within an evening; instruction counts
hardly do: `valgrind --tool=callgrind` counts what the CPU executes. Not quite whatever else is
running, though: the app's caches expire by the clock and a run under valgrind is ~50× slower,
so a slower run re-reads a little more (a purchase measured 1.5 % apart at different times, a
page 0.2 %). `--against` therefore runs the other version at the same time on the other core,
step by step, and the two compare to about 0.1 %. Each journey runs twice in one in-process app (production
configuration on the bench database and Redis, Flask's test client, as bench/roundtrips.py):
once with `--small` and once with `--large` repetitions, with identical setup. The difference
divided by the difference in repetitions is the cost of one repetition, with the process start,
imports, setup and first-call warm-up cancelled out.

- purchase: a fresh buyer signs in (bcrypt cost 4), opens the event page, adds one Solo ticket,
  opens the checkout review, places the order and pays with the success card (8 requests: the
  rush's cart journey, `rush.py --journey cart`, so that versions before "buy now" compare).
- pay-now (only when asked: `--journey pay-now`): the same buyer's purchase as the rush makes it
  now (`rush.py`'s default journey): sign-in, event page, "buy now", the review, its card form
  (placed and paid), the paid order's page (6 requests with the sign-in).
- page: the same signed-in buyer GETs /cart/ (an empty cart: one small query, the layout).
- checkin (only when asked: `--journey checkin` or `all`): a scanner app's valid scan, POST
  /tickets/api/check-in with a bearer token and a distinct unused seeded ticket, as bench/checkin.py
  sends them (the token is made in the setup, through the service).

Only the Python process is counted (PostgreSQL and Redis run outside valgrind). Needs valgrind
(`apt-get install valgrind`); about 5 minutes, 7 with the scans.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

PAGE = "/cart/"
TOKEN_NAME = "instructions"


def inner(journey: str, repetitions: int, setup_buyers: int, ticket_offset: int = 0) -> None:
    """Run under callgrind: the same setup whatever `repetitions`, then the journeys."""
    from bench import roundtrips, rush

    app, counter = roundtrips.make_app()
    if journey == "checkin":
        return inner_checkin(app, repetitions, setup_buyers, ticket_offset)
    event = rush.create_rush_event(setup_buyers * 2, "instructions")
    emails = rush.create_buyers(setup_buyers + 1, "instructions")
    if journey in ("purchase", "pay-now"):
        for email in emails[:repetitions]:
            step = roundtrips.Step(app.test_client(), counter)
            if journey == "pay-now":
                roundtrips.buyer_flow_pay_now_apart(step, email, event)
            else:
                roundtrips.buyer_flow(step, email, event, events_list=False)
        return
    step = roundtrips.Step(app.test_client(), counter)
    page = step("login page", "GET", "/auth/login")
    action, data = roundtrips.form(page, "/auth/login", email=emails[-1], password=common.PASSWORD)
    step("login", "POST", action, data)
    for _ in range(repetitions):
        step("page", "GET", PAGE)


def inner_checkin(app, repetitions: int, setup_scans: int, ticket_offset: int) -> None:
    """`repetitions` valid scans through the API; `setup_scans` payloads are signed whatever
    `repetitions`, so the setup costs the same in both runs."""
    from datetime import UTC, datetime

    from app.extensions import db
    from app.models import User
    from app.services.scanner_tokens import create_scanner_token
    from bench import checkin

    with app.app_context():
        steward = db.session.scalar(db.select(User).filter_by(email=checkin.staff_account(1)["email"]))
        _, token = create_scanner_token(db.session, steward, name=TOKEN_NAME, now=datetime.now(UTC),
                                        valid_days=1, max_tokens=1000)
    payloads = checkin.payloads_for_unused_tickets(setup_scans, ticket_offset, newest_first=True)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    for payload in payloads[:repetitions]:
        response = client.post(checkin.API, json={"payload": payload}, headers=headers)
        if response.get_json().get("verdict") != "VALID":
            raise RuntimeError(f"check-in: {response.status_code} {response.get_json()}")


def count(journey: str, repetitions: int, setup_buyers: int, source: Path, ticket_offset: int = 0) -> int:
    out = common.OUT / f"callgrind.{os.getpid()}.{source.name}.{journey}.{repetitions}.out"  # runs may overlap
    env = dict(os.environ, PYTHONHASHSEED="0", BENCH_SOURCE=str(source))
    env.pop("BENCH_PATCHES", None)  # `source` is already the patched copy when patches were asked for
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                    "--inner", journey, str(repetitions), str(setup_buyers), str(ticket_offset)],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    out.unlink()
    return int(match.group(1))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=4)
    parser.add_argument("--large", type=int, default=24)
    parser.add_argument("--journey", choices=("purchase", "pay-now", "page", "checkin", "both", "all"), default="both",
                        help="both: purchase and page; all: the three")
    parser.add_argument("--against", type=Path, help="another version's directory (bench/out/src-<commit>), "
                        "measured side by side")
    parser.add_argument("--inner", nargs=4, metavar=("JOURNEY", "N", "SETUP", "OFFSET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        journey, n, setup, offset = args.inner
        inner(journey, int(n), int(setup), int(offset))
        return {}
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    common.OUT.mkdir(parents=True, exist_ok=True)
    source = common.app_dir()
    sources = [source] + ([args.against.resolve()] if args.against else [])
    figures = {}
    journeys = {"both": ("purchase", "page"), "all": ("purchase", "page", "checkin")}.get(args.journey,
                                                                                          (args.journey,))
    for journey in journeys:
        scale = 1 if journey in ("purchase", "pay-now") else 10  # a page or a scan is cheap: more of them
        small, large = args.small * scale, args.large * scale
        totals: dict[Path, list[int]] = {src: [] for src in sources}
        with concurrent.futures.ThreadPoolExecutor(len(sources)) as pool:
            for n in (small, large):  # every version runs each step at once, under the same load
                # Each version scans its own tickets (one checked in by the other would be a refusal): the
                # i-th takes the newest unused from position 4·i·large, beyond what the others use up.
                futures = {src: pool.submit(count, journey, n, large, src, 4 * i * large)
                           for i, src in enumerate(sources)}
                for src, future in futures.items():
                    totals[src].append(future.result())
        per = {src: (runs[1] - runs[0]) / (large - small) for src, runs in totals.items()}
        figures[f"instructions_per_{journey.replace('-', '_')}_m"] = round(per[source] / 1e6, 3 if journey == "checkin" else 2)
        what = {"purchase": "buyer (sign-in + purchase, 8 requests)",
                "pay-now": "buyer (sign-in + purchase paid on the review, 6 requests)", "page": f"signed-in GET {PAGE}",
                "checkin": "valid scan (check-in API, bearer token)"}[journey]
        for src in sources:
            change = f" ({per[source] / per[src] - 1:+.1%} for {source.name})" if src != source else ""
            print(f"{journey}: {per[src] / 1e6:.2f} M instructions per {what} — {src.name}{change}")
    figures["instructions_commit"] = "work tree" if source == common.ROOT else source.name.removeprefix("src-")
    if "checkin" in journeys:
        from bench import checkin

        checkin.revoke_bench_tokens(TOKEN_NAME)
    common.record("instructions", figures)
    return figures


if __name__ == "__main__":
    main()
