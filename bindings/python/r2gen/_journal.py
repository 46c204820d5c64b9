"""The journal of a batch run: a JSON-lines file that makes the run resumable.

Line 1 describes the job (annotation, split, model, decoding...); every later line is one finished
study, {"id": ..., "report": ...}, appended with a single write() on an O_APPEND descriptor and
fsync()ed before the study counts as done. A crash can therefore only cut the last line short:
reopening drops such a tail, so a resumed run redoes at most the study that was being written and
never loses one that was reported done. An id already in the journal is never appended again.
"""

import json
import os


class JournalError(Exception):
    """The journal cannot be used: another job's, or damaged."""


class Journal:
    def __init__(self, path, job):
        """Open the journal at `path` for `job` (a JSON-able dict), creating it or resuming it.
        `done` maps the ids already finished to their reports."""
        self.path = path
        self.done = {}
        if os.path.exists(path):
            self._resume(job)
        else:
            _write_atomically(path, (json.dumps({"job": job}) + "\n").encode("utf-8"))
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def _resume(self, job):
        with open(self.path, "rb") as f:
            data = f.read()
        complete = data.rfind(b"\n") + 1
        lines = data[:complete].split(b"\n")[:-1]
        if not lines or _job_of(lines[0]) != job:
            raise JournalError(f"{self.path} belongs to a different job (other annotation, "
                               "split, model or decoding settings): use another output folder, "
                               "or delete it to start again")
        for number, line in enumerate(lines[1:], start=2):
            try:
                entry = json.loads(line)
                self.done.setdefault(entry["id"], entry["report"])
            except (ValueError, KeyError, TypeError) as e:
                raise JournalError(f"{self.path}, line {number}: not a study result ({e})") from e
        if complete < len(data):
            os.truncate(self.path, complete)  # a write cut short by a crash: redo that study

    def append(self, study_id, report):
        """Record a finished study durably; False (and nothing written) if it is already done."""
        if study_id in self.done:
            return False
        line = (json.dumps({"id": study_id, "report": report}, ensure_ascii=False) + "\n")
        data = line.encode("utf-8")
        written = os.write(self._fd, data)
        if written != len(data):
            os.ftruncate(self._fd, os.lseek(self._fd, 0, os.SEEK_END) - written)
            raise OSError(f"{self.path}: only {written} of {len(data)} bytes written")
        os.fsync(self._fd)
        self.done[study_id] = report
        return True

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _job_of(header):
    try:
        return json.loads(header).get("job")
    except (ValueError, AttributeError):
        return None


def write_json_atomically(path, value):
    """json.dump(value) into path so that readers see the old file or the whole new one."""
    _write_atomically(path, json.dumps(value).encode("utf-8"))


def _write_atomically(path, data):
    temporary = path + ".tmp"
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
