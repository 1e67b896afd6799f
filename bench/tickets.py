"""In-process ticket figures: PDF render (200 distinct payloads), sign and verify (10 000 runs).

    .venv/bin/python bench/tickets.py

"Cold" PDF runs use a new payload each time (the QR symbol cache misses, as for a fresh
order); "warm" re-renders the last 100 of them, still in the 128-entry QR symbol cache (a
customer re-downloading). Also prints the QR
sizes that docs/qr-format.md quotes (base32 vs base64url payload).
"""
from __future__ import annotations

import base64
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

PDF_RUNS = 200
SIGN_RUNS = 10_000


CPU_TIMES: dict[str, list[float]] = {}


def timed(fn, args, name: str = "") -> list[float]:
    """Wall times (s) of fn(arg) for each arg; the thread's CPU times go to CPU_TIMES[name].

    On a loaded machine the wall time includes waiting for a core; the CPU time does not.
    """
    times, cpu = [], []
    for arg in args:
        c0, t0 = time.thread_time(), time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    if name:
        CPU_TIMES[name] = cpu
    return times


def med_p99(times: list[float], scale: float = 1000.0, digits: int = 3) -> tuple[float, float]:
    return (round(statistics.median(times) * scale, digits), round(common.percentile(times, 99) * scale, digits))


def qr_sizes(signing, payload: str) -> dict:
    import qrcode
    from qrcode.constants import ERROR_CORRECT_H

    def version(text: str) -> int:
        qr = qrcode.QRCode(error_correction=ERROR_CORRECT_H)
        qr.add_data(text, optimize=0)
        qr.make(fit=True)
        return qr.version

    raw = base64.b32decode(payload + "=" * (-len(payload) % 8))
    b64 = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return {"qr_payload_bytes": len(raw), "qr_base32_chars": len(payload), "qr_base32_version": version(payload),
            "qr_base64url_chars": len(b64), "qr_base64url_version": version(b64)}


def main() -> dict:
    common.use_app()
    from app.services import rendering, signing

    key = signing.load_private_key(signing.generate_private_key_pem())
    public = key.public_key()
    digests = [signing.double_key_digest(signing.make_user_key(), signing.make_purchase_key())
               for _ in range(SIGN_RUNS)]

    def view(payload: str, n: int) -> rendering.TicketView:
        return rendering.TicketView(
            "Athletics — Men's 100m Final", "Athletics", "Stade de France, Saint-Denis",
            datetime(2026, 8, 4, 18, 30, tzinfo=UTC), "Family", 4, "Zoë Łukasz 王",
            "GCH-K7M2QX", f"GCH-K7M2QX-{n % 100:02d}", payload)

    sign_times = timed(lambda i: signing.sign_payload(key, 10**9 + i, digests[i]), range(SIGN_RUNS), "sign")
    payloads = [signing.sign_payload(key, 10**9 + i, digests[i]) for i in range(SIGN_RUNS)]
    verify_times = timed(lambda text: signing.verify_payload_offline(public, text), payloads, "verify")
    assert all(signing.verify_payload_offline(public, p) == signing.AUTHENTIC for p in payloads[:100])

    rendering.render_ticket_pdf(view(signing.sign_payload(key, 1, digests[0]), 0))  # imports, fonts
    views = [view(payloads[i], i) for i in range(PDF_RUNS)]
    cold = timed(rendering.render_ticket_pdf, views, "pdf")
    warm = timed(rendering.render_ticket_pdf, views[-100:])
    svg = timed(rendering.qr_svg, [v.payload for v in views[-100:]])
    pem = signing.public_key_pem(key)
    verify_pem = timed(lambda text: signing.verify_payload_offline(pem, text), payloads[:2000])
    pdf = rendering.render_ticket_pdf(views[0])

    figures = {}
    figures["pdf_render_ms_median"], figures["pdf_render_ms_p99"] = med_p99(cold, digits=2)
    figures["pdf_render_warm_ms_median"], _ = med_p99(warm, digits=2)
    figures["pdf_render_cpu_ms_median"], _ = med_p99(CPU_TIMES["pdf"], digits=2)
    figures["pdf_bytes"] = len(pdf)
    figures["qr_svg_warm_ms_median"], _ = med_p99(svg)
    figures["sign_ms_median"], figures["sign_ms_p99"] = med_p99(sign_times, digits=4)
    figures["verify_ms_median"], figures["verify_ms_p99"] = med_p99(verify_times, digits=4)
    figures["verify_cpu_ms_median"], _ = med_p99(CPU_TIMES["verify"], digits=4)
    figures["sign_cpu_ms_median"], _ = med_p99(CPU_TIMES["sign"], digits=4)
    figures["verify_pem_arg_ms_median"], _ = med_p99(verify_pem, digits=4)
    figures.update(qr_sizes(signing, payloads[0]))
    common.print_figures(f"tickets (in-process; {PDF_RUNS} PDFs, {SIGN_RUNS} sign/verify)", figures)
    common.record("tickets", figures)
    return figures


if __name__ == "__main__":
    main()
