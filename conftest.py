"""Repository-wide pytest hooks: report how many PyTorch parity tests were skipped."""

from __future__ import annotations

_PARITY_MODULES = ("'torch'", "'esm'")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def pytest_terminal_summary(terminalreporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    parity = [r for r in skipped if any(m in _skip_reason(r) for m in _PARITY_MODULES)]
    if parity:
        terminalreporter.write_line(
            f"{len(parity)} parity tests skipped: PyTorch or fair-esm is not installed "
            "(bash ci/setup.sh installs them when PIP_FIND_LINKS offers the CPU torch wheel)", yellow=True)
