"""Where the live dashboard is: a one-time login link to home's control plane, as this machine reaches it.

Home's dashboard (`jupiter.runtime.extensions.dashboard`) is behind the
deployment's token like every other route. A browser cannot send that
header, so home hands out one-time login codes (`POST /dashboard/code`,
itself behind the token): the link `/dashboard/login?code=...` sets a
session cookie and leads to the page. A code works once and expires after a
few minutes; `jupiter dashboard` asks for a new one. How a browser on this
machine reaches home depends on the backend (`Handle.browser_access`): its
address (local, docker), or a `kubectl port-forward` or `kubectl proxy` to
run first (kubernetes).
"""

from __future__ import annotations

from jupiter.backends.control import Unreachable
from jupiter.service.record import Deployment, DeploymentError

CODE_TIMEOUT = 10.0


def login_code(deployment: Deployment, home: str | None = None) -> tuple[str, float]:
    """A fresh one-time login code of a home's dashboard and the seconds it stays valid."""
    node = home or deployment.home
    try:
        answer = deployment.control.post(node, "/dashboard/code", {}, CODE_TIMEOUT)
    except Unreachable as exc:
        raise DeploymentError(str(exc)) from None
    code = answer.get("code") if isinstance(answer, dict) else None
    if not isinstance(code, str):
        why = answer.get("error", answer) if isinstance(answer, dict) else answer
        raise DeploymentError(f"home {node} gave no dashboard login code: {str(why)[:200]}")
    return code, float(answer.get("expires", 0.0))


def dashboard_links(deployment: Deployment, home: str | None = None) -> list[str]:
    """The lines that tell a user how to open the dashboard (one link per way to reach home)."""
    node = home or deployment.home
    code, expires = login_code(deployment, node)
    ways = deployment.handle.browser_access(node)
    lines = []
    for index, way in enumerate(ways):
        url = f"{way.url}/dashboard/login?code={code}"
        lead = "dashboard: " if index == 0 else "       or: "
        if way.steps:
            first = "; ".join(f"`{step}`" for step in way.steps)
            lines.append(f"{lead}run {first} (in another terminal), then open {url}")
        else:
            lines.append(f"{lead}{url}")
    minutes = max(1, round(expires / 60)) if expires else 0
    valid = f", valid {minutes} min" if minutes else ""
    lines.append(f"           (a one-time link{valid}; `jupiter dashboard` prints a new one)")
    return lines


def dashboard_lines(deployment: Deployment) -> list[str]:
    """`dashboard_links`, or one line saying why there is no dashboard: a run goes on without one."""
    try:
        return dashboard_links(deployment)
    except DeploymentError as exc:
        return [f"dashboard: not available ({exc})"]
