"""python3 -m r2gen.batch: reports and metrics for every study of an R2Gen annotation file.

    python3 -m r2gen.batch --annotation annotation.json --images images/ --model M.gguf \\
        --preset iu --out results/ [--split test] [--cluster local:4 | --scheduler tcp://H:P]

The annotation is R2Gen's {"train"|"val"|"test": [{"id", "report", "image_path": [...], ...}]};
image paths are relative to --images, and all images of a study are its views. The run writes,
in --out, R2GenGPT's files for the split (<split>_result.json: {id: [generated report]},
<split>_refs.json: {id: [cleaned reference]}), <split>_metrics.json (R2GenGPT's scores) and
<split>_item_scores.json ({id: {metric: score}}). References are cleaned as R2GenGPT's
clean_report does for --dataset (iu_xray for --preset iu, mimic_cxr for mimic, unless given).

<split>_journal.jsonl holds every finished study as soon as it is done: running the same command
again after an interruption continues where the run stopped. The final files are written once
every study has a report, in annotation order, so they do not depend on how the run was split
across runs or workers. With --scheduler or --cluster the studies run on Dask distributed.
"""

import argparse
import json
import os
import sys

from . import eval as metrics
from ._journal import Journal, JournalError, write_json_atomically
from ._progress import Progress
from .errors import R2GenError
from .model import PRESETS, Model

PROGRAM = "r2gen.batch"
DATASET_OF_PRESET = {"iu": "iu_xray", "mimic": "mimic_cxr"}

# Decoding options: command-line flag -> Model.report() keyword (unset: the preset's value).
DECODING_OPTIONS = (("--beams", "num_beams", int), ("--min-new", "min_new_tokens", int),
                    ("--max-new", "max_new_tokens", int),
                    ("--repetition-penalty", "repetition_penalty", float),
                    ("--length-penalty", "length_penalty", float))


class BatchError(Exception):
    """A problem with the job's inputs, said in one line."""


def main(argv=None):
    args = parse_arguments(argv)
    try:
        return run(args)
    except (BatchError, JournalError, R2GenError, metrics.MeteorUnavailable, OSError) as e:
        print(f"{PROGRAM}: {e}", file=sys.stderr)
        return 2


def parse_arguments(argv):
    parser = argparse.ArgumentParser(prog=f"python3 -m {PROGRAM}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotation", required=True, help="R2Gen-format annotation JSON")
    parser.add_argument("--images", required=True, help="folder the image paths are relative to")
    parser.add_argument("--model", required=True, help="the model GGUF")
    parser.add_argument("--llm", help="a separate LLaMA GGUF, if the model has none")
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS),
                        help="decoding settings of R2GenGPT for that data set")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--split", default="test", help="annotation split to run (test)")
    parser.add_argument("--dataset", choices=metrics.DATASETS,
                        help="how references are cleaned (default: from --preset)")
    for flag, keyword, kind in DECODING_OPTIONS:
        parser.add_argument(flag, dest=keyword, type=kind, metavar=kind.__name__.upper(),
                            help=f"override the preset's {keyword}")
    parser.add_argument("--threads", type=int,
                        help="threads per model (default: all CPUs; with --cluster local:N, "
                             "the CPUs divided by N)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="run on the Dask cluster at this address "
                                           "(tcp://HOST:PORT)")
    where.add_argument("--cluster", help="run on a Dask LocalCluster of N worker processes "
                                         "(local:N)")
    parser.add_argument("--meteor-jar", help="meteor-1.5.jar, to add METEOR (needs Java)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    args.local_workers = None
    if args.cluster is not None:
        kind, _, count = args.cluster.partition(":")
        if kind != "local" or not count.isdigit() or int(count) < 1:
            parser.error(f"--cluster takes local:N with N >= 1, not {args.cluster!r}")
        args.local_workers = int(count)
    return args


def run(args):
    studies = load_studies(args.annotation, args.split, args.images)
    if args.meteor_jar is not None:
        problem = metrics.meteor_problem(args.meteor_jar)
        if problem:
            raise BatchError(problem)  # before hours of generation, not after
    dataset = args.dataset or DATASET_OF_PRESET[args.preset]
    decoding = {keyword: getattr(args, keyword) for _, keyword, _ in DECODING_OPTIONS
                if getattr(args, keyword) is not None}
    job = {"annotation": os.path.abspath(args.annotation), "split": args.split,
           "images": os.path.abspath(args.images), "model": os.path.abspath(args.model),
           "llm": os.path.abspath(args.llm) if args.llm else None, "preset": args.preset,
           "decoding": decoding}
    os.makedirs(args.out, exist_ok=True)
    with Journal(os.path.join(args.out, f"{args.split}_journal.jsonl"), job) as journal:
        pending = [study for study in studies if study["id"] not in journal.done]
        if len(pending) < len(studies):
            print(f"{PROGRAM}: resuming: {len(studies) - len(pending)} of {len(studies)} studies "
                  "already done", file=sys.stderr)
        record = Recorder(journal, Progress(len(studies), len(studies) - len(pending),
                                            enabled=not args.no_progress))
        try:
            generate(args, job, {"preset": args.preset, **decoding}, pending, record)
        except KeyboardInterrupt:
            record.progress.draw(final=True)
            print(f"{PROGRAM}: interrupted; {len(journal.done)} of {len(studies)} studies are "
                  "saved: run the same command to continue", file=sys.stderr)
            return 130
        record.progress.draw(final=True)
        if record.failures:
            for study_id, message in record.failures:
                print(f"{PROGRAM}: study {study_id}: {message}", file=sys.stderr)
            print(f"{PROGRAM}: {len(record.failures)} studies failed; the others are saved: fix "
                  "the cause and run the same command again", file=sys.stderr)
            return 1
        scores = write_outputs(args.out, args.split, studies, journal.done, dataset,
                               args.meteor_jar)
    print(json.dumps(scores))
    return 0


def load_studies(annotation, split, image_root):
    """The split's studies as {"id", "report", "images": [absolute paths]}, in file order."""
    try:
        with open(annotation, encoding="utf-8") as f:
            entries = json.load(f)[split]
    except KeyError:
        raise BatchError(f"{annotation} has no {split!r} split") from None
    except ValueError as e:
        raise BatchError(f"{annotation} is not JSON: {e}") from None
    studies, seen = [], set()
    for number, entry in enumerate(entries):
        try:
            study = {"id": entry["id"], "report": entry["report"],
                     "images": [os.path.abspath(os.path.join(image_root, path))
                                for path in entry["image_path"]]}
        except (KeyError, TypeError):
            raise BatchError(f"{annotation}: {split} entry {number} lacks id, report or "
                             "image_path") from None
        if study["id"] in seen:
            raise BatchError(f"{annotation}: {split} has the id {study['id']!r} twice")
        seen.add(study["id"])
        studies.append(study)
    if not studies:
        raise BatchError(f"{annotation}: the {split} split has no studies")
    return studies


class Recorder:
    """Where finished studies go: the journal (durably, once per id) and the progress bar."""

    def __init__(self, journal, progress):
        self.journal, self.progress = journal, progress
        self.failures = []

    def success(self, study_id, report):
        self.journal.append(study_id, report)
        self.progress.advance()

    def failure(self, study_id, message):
        self.failures.append((study_id, message))
        self.progress.advance(failed=True)


def generate(args, job, decoding, pending, record):
    if args.scheduler is None and args.local_workers is None:
        generate_here(job, args.threads, decoding, pending, record)
        return
    from . import _dask  # only distributed runs need Dask
    threads = args.threads
    if threads is None and args.local_workers:
        threads = max(1, (os.cpu_count() or 1) // args.local_workers)
    _dask.run(job, threads, decoding, pending, record, scheduler=args.scheduler,
              local_workers=args.local_workers)


def generate_here(job, threads, decoding, pending, record):
    """All pending studies, one after the other, on one model in this process."""
    if not pending:
        return
    with Model(job["model"], llm_path=job["llm"], threads=threads) as model:
        for study in pending:
            try:
                report = model.report(study["images"], **decoding)
            except R2GenError as e:
                record.failure(study["id"], str(e))
                continue
            record.success(study["id"], report)


def write_outputs(out, split, studies, reports, dataset, meteor_jar):
    """R2GenGPT's result and reference files, the metrics and the per-study scores; returns the
    metrics."""
    ids = [study["id"] for study in studies]
    hypos = {study_id: [reports[study_id]] for study_id in ids}
    refs = {study["id"]: [metrics.clean_report(study["report"], dataset)] for study in studies}
    scores, per_item = metrics.evaluate(refs, hypos, meteor_jar)
    item_scores = {study_id: {name: values[i] for name, values in per_item.items()}
                   for i, study_id in enumerate(ids)}
    write_json_atomically(os.path.join(out, f"{split}_result.json"), hypos)
    write_json_atomically(os.path.join(out, f"{split}_refs.json"), refs)
    write_json_atomically(os.path.join(out, f"{split}_metrics.json"), scores)
    write_json_atomically(os.path.join(out, f"{split}_item_scores.json"), item_scores)
    return scores


if __name__ == "__main__":
    sys.exit(main())
