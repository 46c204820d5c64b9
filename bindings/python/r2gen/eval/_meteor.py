"""METEOR through the official meteor-1.5 jar, spoken to as pycocoevalcap's Meteor does.

The jar runs as `java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm` from its own folder (it
finds data/paraphrase-en.gz there). Per item it reads "SCORE ||| ref ||| ... ||| hyp" (runs of
whitespace made one space, "|||" removed from the hypothesis) and answers a line of statistics;
then "EVAL ||| stats ||| ..." gives one score per item and the corpus score, one per line.
No reimplementation: METEOR's stemming, synonyms and paraphrase tables live in the jar, and
nltk's meteor_score is a different metric.
"""

import os
import re
import shutil
import subprocess
import tempfile

from ._corpus import items

JAR_HELP = ("download Meteor 1.5 (https://www.cs.cmu.edu/~alavie/METEOR/, or the "
            "meteor-1.5.jar and data/paraphrase-en.gz of pycocoevalcap) and pass the jar's path")


class MeteorUnavailable(RuntimeError):
    """METEOR cannot run here: no jar at the given path, no Java, or the jar failed."""


def meteor_problem(jar, java="java"):
    """Why METEOR cannot run with this jar and Java command, or None when both are there."""
    if not os.path.isfile(jar):
        return f"METEOR: no jar at {jar}: {JAR_HELP}"
    if shutil.which(java) is None:
        return (f"METEOR: Java ({java!r}) is not installed or not on PATH: install a Java "
                "runtime (Debian: apt-get install default-jre-headless)")
    return None


def meteor(gts, res, jar, java="java"):
    """(corpus METEOR, [METEOR per item]) from the meteor-1.5 jar at `jar`."""
    problem = meteor_problem(jar, java)
    if problem:
        raise MeteorUnavailable(problem)
    pairs = items(gts, res)
    command = [shutil.which(java), "-jar", "-Xmx2G", os.path.abspath(jar),
               "-", "-", "-stdio", "-l", "en", "-norm"]
    env = dict(os.environ, LC_ALL="C")
    with tempfile.TemporaryFile() as errors, subprocess.Popen(
            command, cwd=os.path.dirname(os.path.abspath(jar)), env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=errors) as process:
        try:
            session = _Session(process, errors)
            stats = [session.ask(_score_line(refs, hyp)) for refs, hyp in pairs]
            session.send(" ||| ".join(["EVAL", *stats]))
            per_item = [session.number() for _ in pairs]
            return session.number(), per_item
        finally:
            process.kill()


def _score_line(refs, hyp):
    line = " ||| ".join(["SCORE", " ||| ".join(refs), hyp.replace("|||", "")])
    return re.sub(r"\s+", " ", line)


class _Session:
    """Line-by-line conversation with the jar; a missing or unreadable answer raises
    MeteorUnavailable with what the jar wrote on stderr."""

    def __init__(self, process, errors):
        self.process, self.errors = process, errors

    def send(self, line):
        try:
            self.process.stdin.write(line.encode("utf-8") + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            self.fail("the jar exited")

    def ask(self, line):
        self.send(line)
        return self.answer()

    def answer(self):
        reply = self.process.stdout.readline()
        if not reply:
            self.fail("the jar exited")
        return reply.decode("utf-8").strip()

    def number(self):
        reply = self.answer()
        try:
            return float(reply)
        except ValueError:
            self.fail(f"the jar answered {reply!r} instead of a score")

    def fail(self, what):
        self.process.kill()
        self.process.wait()
        self.errors.seek(0)
        stderr = self.errors.read().decode("utf-8", "replace").strip()
        raise MeteorUnavailable(f"METEOR: {what}" + (f": {stderr}" if stderr else ""))
