"""The one module that talks to Kubernetes (the official `kubernetes` client).

`Cluster` is the small interface the kubernetes backend needs: create an
object, wait for Deployments to be ready or Jobs to complete (with watches
and a deadline), list pods, read a Job's or a pod's log, update the data of a
ConfigMap, call an agent through the API server's service proxy, delete by
label. `KubeClient` implements it with the
official client; the tests implement it with a fake and check the exact
sequence of calls. Failures are raised as `ClusterError`s whose message
names the object, the pod and its last events, and says what to do.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from jupiter.model.errors import JupiterError

# Waiting reasons after which a pod will not come up by itself.
FATAL_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


class ClusterError(JupiterError):
    """The cluster refused a call or an object did not come up."""


class Forbidden(ClusterError):
    """The cluster refused a call for lack of permissions (HTTP 403)."""


class AlreadyExists(ClusterError):
    """An object of that name exists already (HTTP 409)."""


class NotFound(ClusterError):
    """The object does not exist (HTTP 404)."""


class NotUp(ClusterError):
    """A pod failed or did not become ready in time; the message names it and its last events."""


@dataclass(frozen=True)
class PodState:
    """What `status` and error messages show of one pod."""

    name: str
    namespace: str
    phase: str
    ready: bool
    reason: str = ""
    """Waiting or terminated reason of a container (e.g. ImagePullBackOff), empty when none."""
    node: str = ""


class Cluster(Protocol):
    """Everything the kubernetes backend asks of a cluster."""

    def create(self, obj: dict[str, Any]) -> None:
        """Create one object; `AlreadyExists`, `Forbidden` or `ClusterError` on failure."""
        ...

    def namespace_exists(self, name: str) -> bool:
        """Whether a namespace exists."""
        ...

    def wait_ready(self, namespace: str, selector: str, count: int, timeout: float) -> None:
        """Wait until `count` pods matching `selector` are ready; `NotUp` naming a pod otherwise."""
        ...

    def wait_complete(self, namespace: str, job: str, timeout: float) -> None:
        """Wait until a Job succeeded; `NotUp` naming its pod otherwise."""
        ...

    def pods(self, namespace: str, selector: str) -> list[PodState]:
        """Pods matching a label selector."""
        ...

    def delete_all(self, namespace: str, selector: str) -> list[str]:
        """Delete every object we create (Deployments, Jobs, Services, ConfigMaps, Secrets, NetworkPolicies) by label.

        Returns `kind/name` of what was deleted; an absent namespace or object is not an error.
        """
        ...

    def delete_namespaces(self, selector: str) -> list[str]:
        """Delete the namespaces matching a label selector; returns `namespace/name` of each."""
        ...

    def job_log(self, namespace: str, job: str) -> str:
        """The log of a Job's pod (the succeeded one, else the newest); `NotFound` when it has none."""
        ...

    def pod_log(self, namespace: str, pod: str, since_seconds: int | None = None) -> str:
        """A pod's log, each line prefixed with the API server's RFC 3339 timestamp and a space.

        `since_seconds`: only the lines of the last that many seconds. `NotFound` when the pod is gone.
        """
        ...

    def update_config_map(self, namespace: str, name: str, data: dict[str, str]) -> None:
        """Set these keys of an existing ConfigMap's data (others are kept); `NotFound` when it is gone."""
        ...

    def proxy(
        self,
        namespace: str,
        service: str,
        port: int,
        method: str,
        path: str,
        token: str,
        body: Any = None,
        timeout: float = 10.0,
        content_type: str = "",
    ) -> Any:
        """Call `path` (with its query) of a Service through the API server's proxy with the deployment token.

        Without `content_type`, `body` (POST) is sent as JSON; with it, `body`
        is bytes sent as they are (e.g. a multipart upload). Returns the
        decoded JSON answer, also when the agent answered with an HTTP error
        (as agents put `error` in it). `ClusterError` when the API server or
        the network refused the call.
        """
        ...


@dataclass(frozen=True)
class KubeConfig:
    """Where to find the cluster: the standard places, in this order."""

    kubeconfig: Path | None = None
    """`--kubeconfig` / `[DEPLOY] KUBECONFIG`; else `KUBECONFIG`, else `~/.kube/config`, else in-cluster."""
    context: str = ""


class KubeClient:
    """`Cluster` with the official client."""

    def __init__(self, config: KubeConfig, progress: Callable[[str], None] = lambda _: None) -> None:
        try:
            import kubernetes  # noqa: PLC0415 - imported only when a cluster is used
        except ImportError:
            raise ClusterError(
                "the kubernetes backend needs the `kubernetes` package: pip install 'jupiter-orchestrator[containers]'"
            ) from None
        # Typed loosely: objects are sent as the plain dicts the renderers make.
        self._k8s: Any = kubernetes
        self.progress = progress
        self.api = self._load(config)
        self.core: Any = kubernetes.client.CoreV1Api(self.api)
        self.apps: Any = kubernetes.client.AppsV1Api(self.api)
        self.batch: Any = kubernetes.client.BatchV1Api(self.api)
        self.networking: Any = kubernetes.client.NetworkingV1Api(self.api)

    def _load(self, config: KubeConfig) -> Any:
        k8s = self._k8s
        configuration = k8s.client.Configuration()
        try:
            k8s.config.load_kube_config(
                config_file=str(config.kubeconfig) if config.kubeconfig else None,
                context=config.context or None,
                client_configuration=configuration,
            )
        except (k8s.config.ConfigException, OSError) as exc:
            if config.kubeconfig is not None or config.context:
                raise ClusterError(f"cannot load the kubeconfig: {exc}; check --kubeconfig and --context") from None
            try:
                k8s.config.load_incluster_config(client_configuration=configuration)
            except k8s.config.ConfigException:
                raise ClusterError(
                    "no Kubernetes configuration found: set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config"
                ) from None
        return k8s.client.ApiClient(configuration)

    # ------------------------------------------------------------------ errors

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        import urllib3  # noqa: PLC0415 - the official client's HTTP library

        ApiException = self._k8s.client.ApiException
        try:
            return call()
        except ApiException as exc:
            raise _refusal(what, exc.status, _api_message(exc)) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise ClusterError(f"{what}: cannot reach the cluster ({exc}); check the kubeconfig's server") from None

    # ------------------------------------------------------------------ create

    def create(self, obj: dict[str, Any]) -> None:
        body: Any = obj
        kind = obj["kind"]
        name = obj["metadata"]["name"]
        namespace = obj["metadata"].get("namespace", "")
        creators: dict[str, Callable[[], Any]] = {
            "Namespace": lambda: self.core.create_namespace(body),
            "Secret": lambda: self.core.create_namespaced_secret(namespace, body),
            "ConfigMap": lambda: self.core.create_namespaced_config_map(namespace, body),
            "Service": lambda: self.core.create_namespaced_service(namespace, body),
            "Deployment": lambda: self.apps.create_namespaced_deployment(namespace, body),
            "Job": lambda: self.batch.create_namespaced_job(namespace, body),
            "NetworkPolicy": lambda: self.networking.create_namespaced_network_policy(namespace, body),
        }
        if kind not in creators:
            raise ClusterError(f"cannot create a {kind}: not an object Jupiter makes")
        self._call(f"create {kind} {namespace + '/' if namespace else ''}{name}", creators[kind])

    def namespace_exists(self, name: str) -> bool:
        try:
            self._call(f"read namespace {name}", functools.partial(self.core.read_namespace, name))
        except NotFound:
            return False
        return True

    # ------------------------------------------------------------------ wait

    def _watch(self, list_call: Callable[..., Any], deadline: float, **kwargs: Any) -> Iterator[Any]:
        """Objects of a watch until the deadline (restarted when the server ends it early)."""
        while (remaining := deadline - time.monotonic()) > 0:
            watch = self._k8s.watch.Watch()
            events = watch.stream(list_call, timeout_seconds=max(1, int(remaining)), **kwargs)
            try:
                while True:
                    event = self._call("watch", lambda e=events: next(e, None))  # type: ignore[misc]
                    if event is None:
                        break
                    yield event["object"]
                    if time.monotonic() >= deadline:
                        return
            finally:
                watch.stop()

    def wait_ready(self, namespace: str, selector: str, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        ready: dict[str, bool] = {}
        for pod in self._watch(self.core.list_namespaced_pod, deadline, namespace=namespace, label_selector=selector):
            state = _pod_state(pod)
            if state.reason in FATAL_REASONS:
                raise NotUp(self._describe(state, f"is in {state.reason}"))
            if state.phase == "Failed":
                raise NotUp(self._describe(state, "failed"))
            ready[state.name] = state.ready and pod.metadata.deletion_timestamp is None
            done = sum(ready.values())
            self.progress(f"  {done}/{count} pods ready in {namespace}")
            if done >= count:
                return
        pending = [pod for pod in self.pods(namespace, selector) if not pod.ready]
        if not pending:
            raise NotUp(f"no pod matching {selector} appeared in {namespace} within {timeout:.0f} s")
        raise NotUp(self._describe(pending[0], f"was not ready within {timeout:.0f} s"))

    def wait_complete(self, namespace: str, job: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for obj in self._watch(
            self.batch.list_namespaced_job, deadline, namespace=namespace, field_selector=f"metadata.name={job}"
        ):
            status = obj.status
            if status.succeeded:
                return
            for condition in status.conditions or []:
                if condition.type == "Failed" and condition.status == "True":
                    pods = self.pods(namespace, f"job-name={job}")
                    detail = self._describe(pods[-1], "failed") if pods else condition.message or condition.reason
                    raise NotUp(f"Job {namespace}/{job} failed: {detail}")
            for pod in self.pods(namespace, f"job-name={job}"):
                if pod.reason in FATAL_REASONS:
                    raise NotUp(self._describe(pod, f"is in {pod.reason}"))
        pods = self.pods(namespace, f"job-name={job}")
        detail = self._describe(pods[-1], "did not finish") if pods else "no pod was started"
        raise NotUp(f"Job {namespace}/{job} did not complete within {timeout:.0f} s: {detail}")

    def _describe(self, pod: PodState, what: str) -> str:
        events = self._events(pod.namespace, pod.name)
        tail = f"; last events: {' | '.join(events)}" if events else ""
        return f"pod {pod.namespace}/{pod.name} {what}{tail}; see `kubectl -n {pod.namespace} describe pod {pod.name}`"

    def _events(self, namespace: str, pod: str, last: int = 3) -> list[str]:
        listing = self._call(
            f"list events of {pod}",
            lambda: self.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod}"),
        )
        items = sorted(listing.items, key=lambda e: str(e.last_timestamp or e.event_time or ""))
        return [f"{e.reason}: {(e.message or '').strip()}" for e in items[-last:]]

    # ------------------------------------------------------------------ read

    def pods(self, namespace: str, selector: str) -> list[PodState]:
        listing = self._call(
            f"list pods in {namespace}", lambda: self.core.list_namespaced_pod(namespace, label_selector=selector)
        )
        return [_pod_state(pod) for pod in listing.items]

    def job_log(self, namespace: str, job: str) -> str:
        pods = self.pods(namespace, f"job-name={job}")
        if not pods:
            raise NotFound(f"Job {namespace}/{job} has no pod to read the log of")
        pod = next((p for p in pods if p.phase == "Succeeded"), pods[-1])
        # Raw bytes (no preloading): the client would otherwise try to parse a log that looks like JSON.
        response = self._call(
            f"read the log of pod {namespace}/{pod.name}",
            lambda: self.core.read_namespaced_pod_log(pod.name, namespace, _preload_content=False),
        )
        return bytes(response.data).decode("utf-8", errors="replace")

    def pod_log(self, namespace: str, pod: str, since_seconds: int | None = None) -> str:
        extra = {"since_seconds": since_seconds} if since_seconds else {}
        response = self._call(
            f"read the log of pod {namespace}/{pod}",
            lambda: self.core.read_namespaced_pod_log(pod, namespace, timestamps=True, _preload_content=False, **extra),
        )
        return bytes(response.data).decode("utf-8", errors="replace")

    def update_config_map(self, namespace: str, name: str, data: dict[str, str]) -> None:
        # A patch of `data` alone: the labels teardown selects on stay as created.
        self._call(
            f"update ConfigMap {namespace}/{name}",
            lambda: self.core.patch_namespaced_config_map(name, namespace, {"data": data}),
        )

    def proxy(
        self,
        namespace: str,
        service: str,
        port: int,
        method: str,
        path: str,
        token: str,
        body: Any = None,
        timeout: float = 10.0,
        content_type: str = "",
    ) -> Any:
        what = f"{method} {path} of {namespace}/{service}"
        resource = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}"
        headers = {"X-Jupiter-Token": token, "Accept": "application/json"}
        payload: bytes | None = None
        if content_type:
            if not isinstance(body, bytes):
                raise TypeError(f"{what}: a body with a content type must be bytes, not {type(body).__name__}")
            payload = body
            headers["Content-Type"] = content_type
        elif body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        status, data = self._call(what, lambda: self._send(method, resource, headers, payload, timeout))
        text = data.decode("utf-8", errors="replace")
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if 200 <= status <= 299:
            if answer is None:
                raise ClusterError(f"{what}: the answer is not JSON ({text[:200]!r})")
            return answer
        if isinstance(answer, dict) and answer.get("kind") != "Status":
            return answer  # the agent's own error answer, passed through by the proxy
        message = str(answer.get("message", "")) if isinstance(answer, dict) else text.strip()[:200]
        if status == 503:
            raise ClusterError(
                f"{what}: the agent cannot be reached ({message}); check its pod with `kubectl -n {namespace} get pods`"
            )
        raise _refusal(what, status, message)

    def _send(
        self, method: str, resource: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> tuple[int, bytes]:
        """(status, body) of one call on the API server, whatever the status.

        The client makes the URL and the credentials (`param_serialize`, which
        also refreshes expiring tokens), and its connection pool (TLS, proxy)
        sends the request; the body goes out as the bytes given, because the
        client's REST layer rebuilds `multipart/form-data` bodies from form
        fields and so would drop an upload made here. `timeout` bounds the
        call: a connection that fails is tried again, an answer that is late
        is not (the pool's default would wait up to four times as long).
        """
        import urllib3  # noqa: PLC0415 - the official client's HTTP library

        _, url, header_params, _, _ = self.api.param_serialize(
            method=method, resource_path=resource, header_params=headers, auth_settings=["BearerToken"]
        )
        response = self.api.rest_client.pool_manager.request(
            method,
            url,
            body=body,
            headers=header_params,
            timeout=urllib3.Timeout(total=timeout),
            retries=urllib3.Retry(total=2, read=0, redirect=0),
        )
        return int(response.status), bytes(response.data)

    # ------------------------------------------------------------------ delete

    def delete_all(self, namespace: str, selector: str) -> list[str]:
        if not self.namespace_exists(namespace):
            return []
        deleted: list[str] = []
        body = self._k8s.client.V1DeleteOptions(propagation_policy="Background")
        kinds: list[tuple[str, Callable[..., Any], Callable[..., Any]]] = [
            ("Deployment", self.apps.list_namespaced_deployment, self.apps.delete_namespaced_deployment),
            ("Job", self.batch.list_namespaced_job, self.batch.delete_namespaced_job),
            ("Service", self.core.list_namespaced_service, self.core.delete_namespaced_service),
            ("ConfigMap", self.core.list_namespaced_config_map, self.core.delete_namespaced_config_map),
            ("Secret", self.core.list_namespaced_secret, self.core.delete_namespaced_secret),
            (
                "NetworkPolicy",
                self.networking.list_namespaced_network_policy,
                self.networking.delete_namespaced_network_policy,
            ),
        ]
        for kind, lister, deleter in kinds:
            listing = self._call(
                f"list {kind}s in {namespace}", functools.partial(lister, namespace, label_selector=selector)
            )
            for item in listing.items:
                name = item.metadata.name
                # Gone already (deleted by someone else meanwhile) is as good as deleted.
                with contextlib.suppress(NotFound):
                    self._call(
                        f"delete {kind} {namespace}/{name}", functools.partial(deleter, name, namespace, body=body)
                    )
                deleted.append(f"{kind}/{name}")
        return deleted

    def delete_namespaces(self, selector: str) -> list[str]:
        listing = self._call("list namespaces", functools.partial(self.core.list_namespace, label_selector=selector))
        deleted = []
        for item in listing.items:
            name = item.metadata.name
            with contextlib.suppress(NotFound):
                self._call(f"delete namespace {name}", functools.partial(self.core.delete_namespace, name))
            deleted.append(f"Namespace/{name}")
        return deleted


def _refusal(what: str, status: int, reason: str) -> ClusterError:
    """The error of an HTTP status the API server answered with."""
    if status == 403:
        return Forbidden(f"{what}: forbidden ({reason}); ask for RBAC rights or use another namespace")
    if status == 404:
        return NotFound(f"{what}: not found")
    if status == 409:
        return AlreadyExists(f"{what}: already exists")
    return ClusterError(f"{what}: {status} {reason}")


def _api_message(exc: Any) -> str:
    try:
        return str(json.loads(exc.body).get("message", exc.reason))
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)


def _pod_state(pod: Any) -> PodState:
    statuses = (pod.status.container_statuses or []) + (pod.status.init_container_statuses or [])
    reason = ""
    for status in statuses:
        state = status.state
        if state is not None and state.waiting is not None and state.waiting.reason:
            reason = state.waiting.reason
        elif state is not None and state.terminated is not None and state.terminated.reason and not reason:
            reason = state.terminated.reason
    ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    return PodState(
        name=pod.metadata.name,
        namespace=pod.metadata.namespace,
        phase=pod.status.phase or "Unknown",
        ready=ready,
        reason=reason,
        node=pod.spec.node_name or "",
    )
