"""The security headers every response must carry (shared by the foundation and matrix tests)."""
from __future__ import annotations

REQUIRED_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def security_header_problems(response) -> list[str]:
    problems = [f"{name} is {response.headers.get(name)!r}, not {value!r}"
                for name, value in REQUIRED_HEADERS.items() if response.headers.get(name) != value]
    csp = response.headers.get("Content-Security-Policy", "")
    if "frame-ancestors 'none'" not in csp:
        problems.append("Content-Security-Policy lacks frame-ancestors 'none'")
    script_src = next((part for part in csp.split(";") if part.strip().startswith("script-src")), "")
    if not script_src or "unsafe-inline" in script_src or "unsafe-eval" in script_src:
        problems.append(f"script-src is {script_src.strip()!r}")
    return problems
