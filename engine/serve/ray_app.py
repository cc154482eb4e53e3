"""The Ray Serve application of `mprt serve --ray`: the replica deployment (engine/serve/ray_replica.py)
with its session router, admission and autoscaling, and how the ingress reaches it.

    plan = RayPlan(replicas=2, max_sessions_per_replica=4)
    handle = start_application(make_shared, plan, address=None)   # None: a local cluster on this machine
    placer = RayPlacer(handle)                                     # engine/serve/ray_ingress.py

Autoscaling (plan.max_replicas > plan.replicas) uses Ray Serve's request-based autoscaler: every session
keeps one relay call in flight on its replica almost all the time, so ongoing requests per replica track
sessions per replica; the target is `autoscale_target` x max_sessions_per_replica.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from typing import Any, Callable

from engine.errors import InputError

APP_NAME = "mprt"
DEPLOYMENT_NAME = "mprt-replica"
ROUTER = "engine.serve.ray_router:SessionRouter"
NODE_START_WAIT_S = 600.0  # `ray start` of a local cluster on a loaded machine (see connect)
# Ray system settings for a local cluster on a busy machine: its agents and workers are Python processes
# that may take minutes to start there; Ray's defaults (seconds) would kill the node or the replicas.
PATIENT_STARTUP = {"RAY_agent_register_timeout_ms": "300000", "RAY_worker_register_timeout_seconds": "300"}


@dataclasses.dataclass(frozen=True)
class RayPlan:
    replicas: int = 1                  # replicas at start (one per GPU)
    max_replicas: int | None = None    # > replicas: autoscale between them on sessions
    max_sessions_per_replica: int = 4  # admission per replica; more are refused, never queued
    gpus_per_replica: float = 0.0      # 1 on GPU machines (one replica per GPU)
    cpus_per_replica: float = 1.0
    max_batch: int = 8                 # cross-session batcher: samples per UNet call
    budget_ms: float = 20.0            # ... and the longest a stream waits to fill a batch
    idle_timeout_s: float = 15.0       # a session nobody relays for is closed on its replica
    autoscale_target: float = 0.75

    def __post_init__(self):
        if self.replicas < 1:
            raise InputError(f"--replicas: expected >= 1, got {self.replicas}")
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise InputError(f"--max-replicas: expected >= --replicas ({self.replicas}), got {self.max_replicas}")
        if self.max_sessions_per_replica < 1:
            raise InputError(f"--max-sessions-per-replica: expected >= 1, got {self.max_sessions_per_replica}")
        if self.max_batch < 1 or self.budget_ms < 0:
            raise InputError(f"--max-batch / --batch-budget-ms: expected >= 1 / >= 0, got {self.max_batch} / "
                             f"{self.budget_ms}")

    @property
    def capacity(self) -> int:
        """The most sessions the deployment can ever hold (the ingress refuses beyond it at once)."""
        return (self.max_replicas or self.replicas) * self.max_sessions_per_replica

    def deployment_options(self) -> dict[str, Any]:
        from ray.serve.config import RequestRouterConfig
        options: dict[str, Any] = dict(
            name=DEPLOYMENT_NAME,
            ray_actor_options={"num_gpus": self.gpus_per_replica, "num_cpus": self.cpus_per_replica},
            # one relay call per session, plus open/close/stats calls
            max_ongoing_requests=2 * self.max_sessions_per_replica + 4,
            request_router_config=RequestRouterConfig(request_router_class=ROUTER,
                                                      request_routing_stats_period_s=1.0,
                                                      request_routing_stats_timeout_s=5.0),
            health_check_period_s=2.0, health_check_timeout_s=30.0, graceful_shutdown_timeout_s=5.0)
        if self.max_replicas and self.max_replicas > self.replicas:
            options["autoscaling_config"] = {
                "min_replicas": self.replicas, "initial_replicas": self.replicas, "max_replicas": self.max_replicas,
                "target_ongoing_requests": max(1.0, self.autoscale_target * self.max_sessions_per_replica),
                "upscale_delay_s": 5.0, "downscale_delay_s": 60.0}
        else:
            options["num_replicas"] = self.replicas
        return options


def replica_application(make_shared: Callable[[], Any], plan: RayPlan):
    """The bound Serve application (also what a Serve config file's import path returns)."""
    from ray import serve

    from engine.serve.ray_replica import StreamReplica
    deployment = serve.deployment(StreamReplica, **plan.deployment_options())
    return deployment.bind(make_shared, plan.max_sessions_per_replica, (plan.max_batch, plan.budget_ms / 1000.0),
                           plan.idle_timeout_s)


def connect(address: str | None, plan: RayPlan, quiet: bool = True) -> None:
    """Join the Ray cluster at `address` ("auto" = the one started with `ray start` here) or start a
    local one sized for the plan (stopped again by `shutdown()`)."""
    import ray
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = dict(log_to_driver=not quiet, configure_logging=quiet,
                                  logging_level="warning" if quiet else "info")
    if address:
        ray.init(address=address, **kwargs)
        return
    cpus = max(2.0, (plan.max_replicas or plan.replicas) * plan.cpus_per_replica + 1)
    local = _start_local_cluster(cpus)
    try:
        ray.init(address=local, **kwargs)
    except Exception as err:  # a cluster nobody can use must not outlive us
        _stop_local_cluster()
        raise InputError(f"could not start a local Ray cluster: the driver cannot join it at {local} ({err})") from None


_LOCAL: dict[str, Any] = {}  # the local cluster this process started: its temp dir


def _start_local_cluster(cpus: float) -> str:
    """`ray start --head` on this host with every agent port given: a raylet otherwise waits a fixed ~15 s
    for its (Python) agents to report their ports and aborts on a busy machine (2 shared cores here)."""
    import shutil
    import socket
    import subprocess
    import sys
    import tempfile
    socks = [socket.socket() for _ in range(5)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    gcs, agent_grpc, agent_http, metrics, runtime_env = (s.getsockname()[1] for s in socks)
    for s in socks:
        s.close()
    temp = tempfile.mkdtemp(prefix="mprt-ray-")
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"
    # The node address is the one Ray resolves loopback to (ray.init rewrites "127.0.0.1" to it): a head on
    # 127.0.0.1 leaves the driver waiting for a raylet on an address no node has.
    from ray._private.services import get_node_ip_address
    node_ip = get_node_ip_address()
    cmd = [ray_cli, "start", "--head", f"--node-ip-address={node_ip}", f"--port={gcs}", f"--num-cpus={cpus:g}",
           "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
           f"--dashboard-agent-grpc-port={agent_grpc}", f"--dashboard-agent-listen-port={agent_http}",
           f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={runtime_env}"]
    # Token auth off for this local cluster, as for the driver (Ray reads the driver's mode when it is
    # imported): a token left in ~/.ray would otherwise switch only the head to token mode.
    env = {**PATIENT_STARTUP, **os.environ, "RAY_AUTH_MODE": "disabled"}
    _LOCAL["temp"] = temp
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=NODE_START_WAIT_S)
    except subprocess.TimeoutExpired:
        _stop_local_cluster()
        raise InputError(f"could not start a local Ray cluster: `ray start` took over {NODE_START_WAIT_S:.0f} s")
    if done.returncode != 0:
        _stop_local_cluster()
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise InputError(f"could not start a local Ray cluster (`ray start` exit {done.returncode}): "
                         + " | ".join(tail))
    return f"{node_ip}:{gcs}"


def _stop_local_cluster() -> None:
    """End the processes of the local cluster this process started (found by its own temp dir)."""
    import signal
    temp = _LOCAL.pop("temp", None)
    if not temp:
        return
    mine = []
    for proc in pathlib.Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if temp.encode() in (proc / "cmdline").read_bytes():
                    mine.append(int(proc.name))
            except OSError:
                continue
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in mine:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(1.0)


def start_application(make_shared: Callable[[], Any], plan: RayPlan, address: str | None = None):
    """Deploy (or redeploy) the replicas and return the deployment handle the ingress uses."""
    from ray import serve
    connect(address, plan)
    serve.start(proxy_location="Disabled")  # the web ingress is mprt serve's, not a Serve HTTP proxy
    return serve.run(replica_application(make_shared, plan), name=APP_NAME, route_prefix=None)


def existing_handle():
    """The handle of an application deployed beforehand (`serve deploy <config>`), for `--address` runs."""
    from ray import serve
    try:
        return serve.get_deployment_handle(DEPLOYMENT_NAME, app_name=APP_NAME)
    except Exception as err:  # noqa: BLE001 - Serve raises several kinds here
        raise InputError(f"no '{APP_NAME}' Serve application on this cluster ({type(err).__name__}: {err}); "
                         "deploy it with `serve deploy deploy/ray-serve.yaml` or drop --attach") from None


def shutdown() -> None:
    """Remove the application, disconnect, and stop the local cluster if this process started one."""
    import ray
    from ray import serve
    try:
        serve.shutdown()
    finally:
        ray.shutdown()
        _stop_local_cluster()
