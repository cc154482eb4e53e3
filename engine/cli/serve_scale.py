"""`mprt serve` options for many streams: cross-session batching on one backend, and `--ray` (sessions on
Ray Serve replicas, one per GPU, behind this process's web ingress)."""
from __future__ import annotations

import functools
import sys

from engine.errors import InputError


def add_scale_options(p) -> None:
    g = p.add_argument_group("many streams: cross-session batching and Ray Serve")
    g.add_argument("--max-batch", type=int, default=8,
                   help="streams whose UNet calls are gathered into one call (default 8; 1 = each session "
                   "calls the model on its own)")
    g.add_argument("--batch-budget-ms", type=float, default=20.0,
                   help="longest a stream waits for others to fill a batch (default 20 ms)")
    g.add_argument("--ray", action="store_true",
                   help="run sessions on Ray Serve replicas (one model + batcher each; pip install -e '.[ray]'); "
                   "this process keeps the page and WebRTC and places each session on a replica")
    g.add_argument("--address", default=None,
                   help="Ray cluster address ('auto': the one `ray start` made here; default: start a local one)")
    g.add_argument("--attach", action="store_true",
                   help="use replicas already deployed (`serve deploy deploy/ray-serve.yaml`) instead of deploying")
    g.add_argument("--replicas", type=int, default=1, help="replicas to start (one per GPU; default 1)")
    g.add_argument("--max-replicas", type=int, default=None,
                   help="autoscale up to this many replicas on sessions (default: no autoscaling)")
    g.add_argument("--max-sessions-per-replica", type=int, default=4,
                   help="sessions one replica takes; beyond, the next replica, then HTTP 503 (default 4)")
    g.add_argument("--gpus-per-replica", type=float, default=None,
                   help="GPUs each replica reserves (default 1 with --device cuda, else 0: CPU replicas)")
    g.add_argument("--cpus-per-replica", type=float, default=1.0, help="CPUs each replica reserves (default 1)")


def check_scale_options(args) -> None:
    if args.max_batch < 1:
        raise InputError(f"--max-batch: expected >= 1, got {args.max_batch}")
    if args.batch_budget_ms < 0:
        raise InputError(f"--batch-budget-ms: expected >= 0, got {args.batch_budget_ms}")
    if (args.address or args.attach) and not args.ray:
        raise InputError("--address / --attach: only with --ray")


def make_batcher(args, backend):
    """The cross-session batcher over the shared backend, or None with --max-batch 1."""
    if args.max_batch <= 1:
        return None
    from engine.runtime.batcher import CrossSessionBatcher
    return CrossSessionBatcher(backend, args.max_batch, args.batch_budget_ms / 1000.0)


def ray_plan(args):
    from engine.serve.ray_app import RayPlan
    gpus = args.gpus_per_replica
    if gpus is None:
        gpus = 1.0 if str(getattr(args, "device", None) or "").startswith("cuda") else 0.0
    return RayPlan(replicas=args.replicas, max_replicas=args.max_replicas,
                   max_sessions_per_replica=args.max_sessions_per_replica, gpus_per_replica=gpus,
                   cpus_per_replica=args.cpus_per_replica, max_batch=args.max_batch, budget_ms=args.batch_budget_ms,
                   idle_timeout_s=args.session_timeout)


def replica_factory(args):
    """What each replica calls to build its model and session parts (picklable: module function + options)."""
    from engine.cli.serve import build_shared
    return functools.partial(build_shared, args)


def ray_ingress(args):
    """-> (ingress SharedModel, open_session, max sessions): deploys (or attaches to) the replicas."""
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError:
        raise InputError("--ray needs Ray Serve: pip install -e '.[ray]'") from None
    from engine.cli.serve import build_shared
    from engine.serve import ray_app
    from engine.serve.ray_ingress import RayPlacer, RemoteSession
    plan = ray_plan(args)
    if args.attach:
        ray_app.connect(args.address, plan)
        handle = ray_app.existing_handle()
    else:
        print(f"mprt serve: starting {plan.replicas} replica(s) on "
              f"{'Ray at ' + args.address if args.address else 'a local Ray cluster'} ...", file=sys.stderr)
        handle = ray_app.start_application(replica_factory(args), plan, args.address)
    info = handle.info.remote(replica=None).result(timeout_s=600)
    shared = build_shared(args, open_model=False)  # the page, uploads and portraits; the model is on the replicas
    shared.size, shared.description = info["size"], f"{info['model']} (Ray Serve replicas)"
    placer = RayPlacer(handle, attempts=max(2, (plan.max_replicas or plan.replicas) + 1))
    return shared, (lambda *a: RemoteSession(placer, *a)), plan.capacity


def serve_application(config: dict):
    """Ray Serve application builder for a config file (`serve deploy deploy/ray-serve.yaml`, then
    `mprt serve --ray --address auto --attach`): config["argv"] holds `mprt serve` options (model, backend,
    replicas, batching), parsed exactly as on the command line."""
    from engine.cli import build_parser
    from engine.serve.ray_app import replica_application
    argv = config.get("argv", [])
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise InputError(f"Serve config args.argv: expected a list of `mprt serve` option strings, got {argv!r}")
    args = build_parser().parse_args(["serve", "--ray", *argv])
    check_scale_options(args)
    return replica_application(replica_factory(args), ray_plan(args))
