# Copyright 2026 The bisenet_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.


"""
The fleet's workers as Ray actors, one model each, on a local or a joined cluster.

Ray is imported here only, and only when a run asks for it, with its usage
statistics switched off (RAY_USAGE_STATS_ENABLED=0, unless the user set it).
The driver ships the model file's bytes once, to an actor the workers fetch
it from (so workers need no copy of it); frames never travel: each worker reads its
input bag and writes its output files on storage every node sees.

A worker process that dies is restarted by Ray (its model loaded again) and
its running task retried, ``retries`` times; a worker that stays dead (its
restarts spent, its node gone) has its task handed to another worker.

Joining a cluster that does not answer fails within JOIN_SECONDS, and SIGTERM
ends a run within TERM_GRACE_SECONDS (sigterm_ends_run): Ray's own handling
of either can take minutes.
"""

import collections
import contextlib
import logging
import os
from pathlib import Path
import signal
import socket
import tempfile
import threading
import uuid

from bisenet_ros.native_stderr import held_native_stderr
from bisenet_ros.tools.fleet.worker import chunk_result, ChunkWorker

# How long the driver waits for results before it refreshes the progress (seconds).
POLL_SECONDS = 0.25
# A cluster that has not let this process join within this is reported (seconds): a live
# one answers in a few; Ray's own retries against a silent address last many minutes.
JOIN_SECONDS = 20.0
# How long the TCP connection to a named head may take (seconds).
PROBE_SECONDS = 5.0
# After SIGTERM, how long cleaning up may take before the process ends anyway (seconds).
TERM_GRACE_SECONDS = 4.0
ADDRESS_FORMS = 'auto, host:port or ray://head:10001'


class WorkerStartError(RuntimeError):
    """The workers could not start: no cluster, no resources, a model or storage they lack."""


class Terminated(BaseException):
    """SIGTERM arrived: the run stops (a BaseException, so that no except clause swallows it)."""


def import_ray():
    """Return the ray module, imported with its usage statistics switched off."""
    os.environ.setdefault('RAY_USAGE_STATS_ENABLED', '0')
    try:
        import ray
    except ImportError:
        raise WorkerStartError("--ray needs Ray: pip install 'bisenet_ros[cluster]'") from None
    return ray


def endpoint(address):
    """
    Return (host, port) of the Ray address 'host:port' or 'ray://host:port', None for 'auto'.

    Raise ValueError naming the address for anything else.
    """
    if address == 'auto':
        return None
    rest = address[len('ray://'):] if address.startswith('ray://') else address
    host, colon, port = rest.rpartition(':')
    if not (colon and host and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f'--ray-address {address}: not an address ({ADDRESS_FORMS})')
    return host.strip('[]'), int(port)


def connect(address=None, cpus=None):
    """
    Connect this process to Ray; return whether it started a cluster (and must shut it down).

    ``address`` None starts a local cluster with ``cpus`` logical CPUs;
    'auto' joins the cluster this machine belongs to, 'host:port' the one
    whose head is there, 'ray://head:10001' one through Ray Client. A process
    already connected keeps its connection. A SIGTERM handler set before is
    set again afterwards: Ray replaces it with its own.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    handler = signal.getsignal(signal.SIGTERM)
    if address is None:
        # In this thread: Ray ends the processes it starts when their starting thread ends.
        ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING)
    else:
        _join(ray, address)
    if callable(handler):
        signal.signal(signal.SIGTERM, handler)
    return True


def _join(ray, address):
    """Join the cluster at ``address``, or raise WorkerStartError within JOIN_SECONDS."""
    target = endpoint(address)
    if target is not None:  # refused or unknown hosts fail here at once, in plain words
        try:
            socket.create_connection(target, timeout=PROBE_SECONDS).close()
        except OSError as exc:
            raise WorkerStartError(f'no Ray cluster at {address}: {exc.strerror or exc}') from None
    failure = []

    def join():
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except Exception as exc:  # any failure of Ray's is reported by the waiting thread
            failure.append(exc)
    # Ray blocks in C++ against an address that accepts but does not answer, and
    # retries for many minutes: the join runs in a thread the caller stops waiting for.
    worker_logger = logging.getLogger('ray._private.worker')
    worker_logger.addFilter(_not_main_thread_warning)
    try:  # its C++ core logs each failed attempt: held, and shown only if the join works
        with held_native_stderr():
            thread = threading.Thread(target=join, name='bisenet-fleet-ray-join', daemon=True)
            thread.start()
            thread.join(JOIN_SECONDS)
            _check_joined(thread, failure, address)
    finally:
        worker_logger.removeFilter(_not_main_thread_warning)


def _check_joined(thread, failure, address):
    """Raise WorkerStartError unless the join thread ended without a failure."""
    if thread.is_alive():
        where = "this machine's (auto)" if address == 'auto' else f'at {address}'
        raise WorkerStartError(f'the Ray cluster {where} did not answer within '
                               f'{JOIN_SECONDS:.0f} s; check the address (ray status on the head)')
    if failure:
        reason = str(failure[0]).strip().splitlines() or [type(failure[0]).__name__]
        raise WorkerStartError(f'could not join the Ray cluster at {address}: {reason[0]}')


def _not_main_thread_warning(record):
    """Drop Ray's warning that it sets no SIGTERM handler from a thread: this tool sets one."""
    return 'SIGTERM handler is not set' not in record.getMessage()


def _terminated(exc):
    """Return whether Terminated is ``exc`` or what caused it (Ray's C calls wrap it)."""
    for _ in range(16):
        if exc is None or isinstance(exc, Terminated):
            return exc is not None
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def sigterm_ends_run():
    """
    Within the block, SIGTERM raises Terminated in the main thread and ends the process soon.

    The process ends TERM_GRACE_SECONDS after SIGTERM whether or not cleaning
    up (workers killed, a cluster this run started shut down) is done by then.
    Ray's own handlers do neither in time: its Python one waits for blocking
    calls to return, its core worker's aborts with a stack dump. A Terminated
    that comes out of Ray wrapped in another error comes out as Terminated.
    Outside the main thread the block runs without a handler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def end(signum, frame):
        timer = threading.Timer(TERM_GRACE_SECONDS, os._exit, (128 + signum,))
        timer.daemon = True
        timer.start()
        raise Terminated(signum)
    previous = signal.signal(signal.SIGTERM, end)
    try:
        yield
    except BaseException as exc:
        if _terminated(exc) and not isinstance(exc, Terminated):
            raise Terminated(signal.SIGTERM) from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def cluster_resources():
    """Return (CPUs, GPUs) of the connected cluster."""
    resources = import_ray().cluster_resources()
    return int(resources.get('CPU', 0)), int(resources.get('GPU', 0))


class _RunState:
    """
    What the workers of a run share: the model file's bytes and the frames read per task.

    A worker fetches the model from here when it starts, also when Ray
    restarts it; the frames are kept as last reported per task, so a retried
    task counts from zero again.
    """

    def __init__(self, model_bytes):
        self.model_bytes = model_bytes
        self.frames = {}

    def model(self):
        """Return the model file's bytes."""
        return self.model_bytes

    def report(self, key, frames):
        """Keep ``frames`` as the count of task ``key`` so far."""
        self.frames[key] = frames

    def total(self):
        """Return the frames read over all tasks."""
        return sum(self.frames.values())


class _ShippedModelWorker(ChunkWorker):
    """A ChunkWorker whose model file comes as bytes from the driver."""

    def __init__(self, settings, model_name, state_name):
        # Found by name: an actor handle as an argument would be a constructor
        # argument in the object store, which Ray warns about for restartable actors.
        ray = import_ray()
        state = ray.get_actor(state_name)
        # Every backend holds the model in memory once built: the file can go.
        with tempfile.TemporaryDirectory(prefix='bisenet-fleet-') as folder:
            path = Path(folder) / model_name
            path.write_bytes(ray.get(state.model.remote()))
            super().__init__(settings.with_runtime(model=path))
        self.state = state

    def segment_reporting(self, task):
        """Segment ``task``, reporting its progress to the driver's progress actor."""
        return self.segment(task, lambda frames: self.state.report.remote(task.key, frames))


class RayWorkers:
    """
    ``count`` ChunkWorker actors on the connected cluster, each loading the model once.

    Each asks ``settings.runtime.threads`` CPUs and, with device cuda, ``gpus`` GPUs.
    Before any work every worker checks that it sees the paths ``visible``
    (inputs, and a marker file in the output root); a worker that does not
    makes the start fail, naming its host and the paths.
    """

    def __init__(self, settings, count, visible=(), retries=3, gpus=1.0, start_timeout=300.0):
        """Start the workers and wait until each has loaded the model and checked storage."""
        ray = self._ray = import_ray()
        self.retries = retries
        model = Path(settings.runtime.model)
        state_name = f'bisenet-fleet-{uuid.uuid4().hex}'
        self._state = ray.remote(num_cpus=0)(_RunState).options(name=state_name).remote(
            model.read_bytes())
        actor = ray.remote(_ShippedModelWorker).options(
            num_cpus=settings.runtime.threads or 1,
            num_gpus=gpus if settings.runtime.device == 'cuda' else 0,
            max_restarts=retries, max_task_retries=retries)
        self.actors = [actor.remote(settings, model.name, state_name) for _ in range(count)]
        try:
            self._check_started(settings, [str(p) for p in visible], start_timeout)
        except WorkerStartError:
            self.close()
            raise

    @property
    def count(self):
        """Return the number of workers alive."""
        return len(self.actors)

    def _check_started(self, settings, visible, timeout):
        ray = self._ray
        checks = [actor.missing_paths.remote(visible) for actor in self.actors]
        ready, waiting = ray.wait(checks, num_returns=len(checks), timeout=timeout)
        if waiting:
            gpus = ' and GPUs' if settings.runtime.device == 'cuda' else ''
            raise WorkerStartError(
                f'{len(waiting)} of {len(checks)} workers did not start within {timeout:.0f} s: '
                f'the cluster lacks the CPUs{gpus} they ask ({settings.runtime.threads or 1} CPUs '
                'each); ask fewer --workers or --threads')
        try:
            answers = ray.get(ready)
        except ray.exceptions.RayActorError as exc:
            raise WorkerStartError(f'a worker could not load the model: {exc}') from None
        for host, missing in answers:
            if missing:
                shown = ', '.join(missing[:3]) + (' ...' if len(missing) > 3 else '')
                raise WorkerStartError(
                    f'a worker on {host} does not see {shown}: the inputs and the output root '
                    'must be on storage every node mounts at the same path')

    def pids(self):
        """Return the process id of each worker (they change when Ray restarts one)."""
        return self._ray.get([actor.pid.remote() for actor in self.actors])

    def run(self, tasks, on_progress):
        """
        Yield the result of every task as it completes; ``on_progress(frames)`` gets the total.

        One task at a time per worker, so that a big task never waits behind
        another on a busy worker while others are idle.
        """
        ray = self._ray
        waiting = collections.deque(tasks)
        lost = collections.Counter()
        idle, running = list(self.actors), {}
        while waiting or running:
            while idle and waiting:
                actor, task = idle.pop(), waiting.popleft()
                running[actor.segment_reporting.remote(task)] = (actor, task)
            if not running:
                for task in waiting:
                    yield chunk_result(task, 'no worker left: every worker died')
                return
            done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
            on_progress(ray.get(self._state.total.remote()))
            for ref in done:
                actor, task = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    # Dead beyond Ray's own restarts: the task goes to another worker.
                    self.actors.remove(actor)
                    lost[task.key] += 1
                    if lost[task.key] <= self.retries:
                        waiting.appendleft(task)
                        continue
                    result = chunk_result(task, f'its worker died {lost[task.key]} times ({exc})')
                except ray.exceptions.RayTaskError as exc:
                    result = chunk_result(task, str(exc))
                idle.append(actor)
                yield result

    def close(self):
        """Stop the workers (the cluster itself is left running)."""
        for actor in [*self.actors, self._state]:
            self._ray.kill(actor)
        self.actors = []
