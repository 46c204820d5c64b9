"""r2gen.batch on a Dask distributed cluster (Debian: python3-distributed).

Every worker loads the model once, through a worker plugin (workers that join later get it too),
and writes one study's report per task. Workers need this package, libr2gen, the model and the
images under the same paths as the client. Results come back to the client as they finish and go
straight into the run's journal. A worker that dies loses nothing: the scheduler gives its
unfinished tasks to other workers (a study that has killed
distributed.scheduler.allowed-failures workers fails with KilledWorker instead).
"""

import contextlib
import hashlib
import json
import logging
import threading

from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker

from .model import Model


class ModelPlugin(WorkerPlugin):
    """The model of one worker: loaded at setup, freed at teardown. Each of the worker's task
    threads writes with its own fork() of it (same weights, own study state)."""

    def __init__(self, model_path, llm_path, threads):
        self.model_path, self.llm_path, self.threads = model_path, llm_path, threads
        self._model = None
        self._per_thread = None

    def setup(self, worker):
        self._model = Model(self.model_path, llm_path=self.llm_path, threads=self.threads)
        self._per_thread = threading.local()

    def teardown(self, worker):
        if self._model is not None:
            self._model.close()

    def model(self):
        if self._model is None:
            raise RuntimeError(f"this worker has not loaded {self.model_path}: see its log")
        forked = getattr(self._per_thread, "model", None)
        if forked is None:
            forked = self._per_thread.model = self._model.fork()
        return forked


def write_report(plugin_name, images, decoding):
    """The task: one study's report on this worker's model."""
    return get_worker().plugins[plugin_name].model().report(images, **decoding)


def run(job, threads, decoding, pending, record, scheduler=None, local_workers=None):
    """Write the reports of `pending` studies with Model.report(images, **decoding) on the
    cluster at `scheduler` (an address), or on a LocalCluster of `local_workers` processes on
    127.0.0.1; record.success / record.failure get each study as it finishes."""
    with contextlib.ExitStack() as stack:
        if local_workers:
            scheduler = stack.enter_context(LocalCluster(
                n_workers=local_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, silence_logs=logging.ERROR))
        client = stack.enter_context(Client(scheduler))
        # Named after the model, so that jobs sharing a cluster keep their own models.
        model = [job["model"], job["llm"], threads]
        plugin_name = "r2gen-model-" + hashlib.sha1(json.dumps(model).encode()).hexdigest()[:16]
        client.register_worker_plugin(ModelPlugin(*model), name=plugin_name)
        futures = client.map(write_report, [plugin_name] * len(pending),
                             [study["images"] for study in pending], decoding=decoding, pure=False)
        study_of = {future.key: study["id"] for future, study in zip(futures, pending)}
        for future in as_completed(futures):
            study_id = study_of[future.key]
            if future.status == "finished":
                record.success(study_id, future.result())
            else:
                record.failure(study_id, repr(future.exception()))
            future.release()

