"""What one confirmation email costs `flask emails work`: CPU, statements, and where the CPU goes.

    .venv/bin/python bench/emails.py [--emails 300] [--tickets 1]

The rush's figures count only the email worker's CPU inside the rush's window; at nice +19 it
catches up afterwards, so a rush that lasted would pay all of it. This measures it in-process:
confirmation jobs are queued for seeded paid orders with `--tickets` tickets (the rush sells one),
delivered by the worker's own loop (`deliver_due`: claim, load, render one PDF per ticket and
both templates, build the MIME message, write it to an outbox folder, mark sent), then the jobs
and the outbox are removed again. CPU is `time.process_time()` (the worker's side only, not
PostgreSQL's); statements are counted at SQLAlchemy; the parts are timed by wrapping the
functions that do them.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

PARTS = (  # (module, function, label): each wrapped, its CPU summed
    ("app.services.rendering", "qr_matrix", "QR symbol"),
    ("app.tickets.documents", "render_ticket_pdf", "PDF (QR symbol included)"),
    ("app.mailer", "render_template", "text and HTML templates"),
    ("app.mailer", "write_to_outbox", "MIME message + file"),
)


def _time_parts(parts: dict) -> list:
    import importlib

    undo = []
    for module_name, name, label in PARTS:
        module = importlib.import_module(module_name)
        original = getattr(module, name)

        def timed(*args, _original=original, _label=label, **kwargs):
            started = time.process_time()
            try:
                return _original(*args, **kwargs)
            finally:
                parts[_label] += time.process_time() - started

        setattr(module, name, timed)
        undo.append((module, name, original))
    return undo


def measure(emails: int = 300, tickets: int = 1) -> dict:
    common.use_app()  # the code measured: the last commit's snapshot, or BENCH_SOURCE
    outbox = Path(tempfile.mkdtemp(prefix="guichet-bench-outbox-"))
    saved = dict(os.environ)
    os.environ.update(common.server_env({"MAIL_OUTBOX_DIR": str(outbox), "GUICHET_WEB_SERVER": "0"}))
    try:
        return _measure(emails, tickets, outbox)
    finally:  # run_all.py starts servers from this process afterwards
        os.environ.clear()
        os.environ.update(saved)


def _measure(emails: int, tickets: int, outbox: Path) -> dict:
    import sqlalchemy as sa

    from app import create_app
    from app.extensions import db
    from app.models import EmailJob
    from app.orders.cli import Tally, deliver_due
    from app.services import email_jobs

    app = create_app()
    kind = email_jobs.ORDER_CONFIRMATION
    with app.app_context():
        order_ids = db.session.scalars(sa.text(
            "SELECT o.id FROM orders o WHERE o.status = 'paid'"
            " AND (SELECT count(*) FROM tickets t WHERE t.order_id = o.id AND t.voided_at IS NULL) = :tickets"
            " AND NOT EXISTS (SELECT 1 FROM email_jobs j WHERE j.order_id = o.id AND j.kind = :kind)"
            " ORDER BY o.id LIMIT :n"), {"tickets": tickets, "kind": kind, "n": emails + 5}).all()
        if len(order_ids) < emails + 5:
            raise SystemExit(f"only {len(order_ids)} seeded paid orders with {tickets} ticket(s): run bench/seed.py")
        now = datetime.now(UTC)
        for order_id in order_ids:
            email_jobs.enqueue_new(db.session, kind, order_id, now)
        db.session.commit()
        stop, tally = threading.Event(), Tally()
        parts: dict = defaultdict(float)
        try:
            deliver_due(datetime.now(UTC), 5, stop, tally)  # warm up: first templates, fonts, statements
            statements = [0]
            sa.event.listen(db.engine, "before_cursor_execute", lambda *a, **k: statements.__setitem__(0, statements[0] + 1))
            undo = _time_parts(parts)
            sent_before, started, wall = tally.sent, time.process_time(), time.perf_counter()
            while deliver_due(datetime.now(UTC), 50, stop, tally):
                pass
            cpu, wall = time.process_time() - started, time.perf_counter() - wall
            for module, name, original in undo:
                setattr(module, name, original)
            sent = tally.sent - sent_before
        finally:
            db.session.rollback()
            db.session.execute(sa.delete(EmailJob).where(EmailJob.order_id.in_(order_ids), EmailJob.kind == kind))
            db.session.commit()
            shutil.rmtree(outbox, ignore_errors=True)
    if sent == 0:
        raise SystemExit("no email was sent")
    per_email = cpu * 1000 / sent
    return {
        "emails_sent": sent,
        "emails_tickets_each": tickets,
        "emails_cpu_ms_per_email": round(per_email, 2),
        "emails_wall_ms_per_email": round(wall * 1000 / sent, 2),
        "emails_statements_per_email": round(statements[0] / sent, 1),
        "emails_cpu_ms_parts": {label: round(seconds * 1000 / sent, 2) for label, seconds in parts.items()},
        "emails_per_minute_one_core": round(60_000 / per_email),
    }


def measure_apart(emails: int = 300, tickets: int = 1) -> dict:
    """`measure` in a fresh interpreter: config.py reads the environment once, at import, and a
    process that imported it already (run_all.py) would build the app on its own settings."""
    result = subprocess.run([sys.executable, __file__, "--emails", str(emails), "--tickets", str(tickets), "--json"],
                            capture_output=True, text=True, check=True, cwd=common.ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=300)
    parser.add_argument("--tickets", type=int, default=1, help="tickets (PDFs) per order")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line, record nothing")
    args = parser.parse_args(argv)
    figures = measure(args.emails, args.tickets)
    if args.json:
        print(json.dumps(figures))
        return figures
    common.print_figures(f"confirmation emails (in-process, {args.tickets} ticket each)", figures)
    common.record("emails", figures)
    return figures


if __name__ == "__main__":
    main()
