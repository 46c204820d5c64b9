#!/usr/bin/env python3
"""Integration test of the Orthanc plugin (examples/orthanc-plugin) against the Debian Orthanc.

Starts Orthanc on 127.0.0.1 (a high port, RemoteAccessAllowed false, no DICOM server; inside a
private network namespace when run as root) with a temporary storage directory and the plugin,
uploads DICOM files made losslessly from the r2gen-tiny fixture images, and checks:
- a missing model makes Orthanc refuse to start, with the plugin's log line;
- both routes give the report r2gen-report gives for the same pixels and model;
- 404 for unknown ids, 400 for a study without usable images, 405 for GET;
- the report stored back into the study as a Basic Text SR;
- 503 with Retry-After under a burst larger than the queue, while Orthanc keeps answering;
- Orthanc stays up throughout and stops cleanly on SIGTERM to its PID.
Exit status 77 (skipped) when Orthanc, the plugin, pydicom or PIL is missing."""
import argparse
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SKIP = 77
DEADLINE_S = 100         # the whole test; ctest's own timeout is above this
REQUEST_TIMEOUT_S = 30   # one HTTP request
START_TIMEOUT_S = 20     # Orthanc start-up (about a second normally)
BURST = 10               # concurrent requests of the burst; the queue admits 2 (1 worker + 1)

failures = []


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what, flush=True)
    if not condition:
        failures.append(what)
    return condition


def skip(reason):
    print(f"skipped: {reason}")
    sys.exit(SKIP)


# ---------------------------------------------------------------------------------------------
# DICOM files made from the fixture images
# ---------------------------------------------------------------------------------------------

def uid(name):
    from pydicom.uid import generate_uid
    return generate_uid(entropy_srcs=["r2gen-orthanc-test", name])


def base_dataset(path_name, study, modality, sop_class, transfer_syntax, number):
    from pydicom.dataset import Dataset, FileMetaDataset
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid(path_name)
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = f"Test^{study}", f"R2GEN-{study}"
    ds.StudyInstanceUID, ds.StudyID = uid(study), study
    ds.SeriesInstanceUID = uid(f"{study}/{path_name}")
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, number, 1
    ds.BodyPartExamined = "CHEST"
    return ds


def grey_pixels(ds, rows, columns, bits_allocated, bits_stored, photometric):
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 0


CR = "1.2.840.10008.5.1.4.1.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def frontal_16bit_monochrome1(images, study, out):
    """The frontal PNG as a 15-bit MONOCHROME1 CR with a rescale and a VOI window chosen so that
    a viewer shows exactly the PNG's pixels: stored = (255 - p) * 100 + 50, intercept -50, window
    centre 12750.5 / width 25501 (linear: x / 100), then inverted."""
    import numpy as np
    from PIL import Image
    pixels = np.asarray(Image.open(os.path.join(images, "frontal_gray8.png")))
    ds = base_dataset("frontal", study, "CR", CR, EXPLICIT_LE, 1)
    ds.ViewPosition = "PA"
    grey_pixels(ds, *pixels.shape, 16, 15, "MONOCHROME1")
    ds.RescaleSlope, ds.RescaleIntercept = "1", "-50"
    ds.WindowCenter, ds.WindowWidth = "12750.5", "25501"
    stored = (255 - pixels.astype(np.uint16)) * 100 + 50
    ds.PixelData = stored.astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"
    ds.save_as(out, write_like_original=False)
    # The test's own reading of PS3.3 C.11.2.1.2.1, to prove the file shows the PNG's pixels.
    x = stored.astype(np.float64) - 50
    c, w = 12750.5, 25501
    y = np.where(x <= c - 0.5 - (w - 1) / 2, 0.0,
                 np.where(x > c - 0.5 + (w - 1) / 2, 255.0, ((x - (c - 0.5)) / (w - 1) + 0.5) * 255))
    shown = 255 - np.floor(y + 0.5).astype(np.int32)
    return bool((shown == pixels).all())


def lateral_jpeg_baseline(images, study, out):
    """The lateral JPEG's own bitstream, encapsulated as an 8-bit JPEG baseline CR."""
    from PIL import Image
    from pydicom.encaps import encapsulate
    path = os.path.join(images, "lateral_gray8.jpg")
    width, height = Image.open(path).size
    ds = base_dataset("lateral", study, "CR", CR, JPEG_BASELINE, 2)
    ds.ViewPosition = "LL"
    grey_pixels(ds, height, width, 8, 8, "MONOCHROME2")
    with open(path, "rb") as f:
        ds.PixelData = encapsulate([f.read()])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.LossyImageCompression = "01"
    ds.save_as(out, write_like_original=False)


def secondary_capture(images, name, study, number, out):
    """An 8-bit grey or RGB PNG as an uncompressed OT secondary capture (no CR/DX: not a view)."""
    import numpy as np
    from PIL import Image
    pixels = np.asarray(Image.open(os.path.join(images, name)))
    ds = base_dataset(name, study, "OT", SECONDARY_CAPTURE, EXPLICIT_LE, number)
    if pixels.ndim == 3:
        ds.Rows, ds.Columns, ds.SamplesPerPixel = pixels.shape[0], pixels.shape[1], 3
        ds.PhotometricInterpretation, ds.PlanarConfiguration = "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    else:
        grey_pixels(ds, *pixels.shape, 8, 8, "MONOCHROME2")
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    ds["PixelData"].VR = "OB"
    ds.save_as(out, write_like_original=False)


# ---------------------------------------------------------------------------------------------
# Orthanc
# ---------------------------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """In the child before exec: SIGKILL when the test process dies, so Orthanc never outlives it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Orthanc:
    def __init__(self, binary, work, name, port, r2gen):
        self.port, self.log_path = port, os.path.join(work, f"{name}.log")
        storage = os.path.join(work, f"{name}-storage")
        config = {
            "Name": f"r2gen-test-{name}", "StorageDirectory": storage, "IndexDirectory": storage,
            "HttpPort": port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "DicomServerEnabled": False, "HttpDescribeErrors": True, "HttpThreadsCount": 50,
            "Plugins": [r2gen.pop("plugin")], "R2Gen": r2gen,
        }
        config_path = os.path.join(work, f"{name}.json")
        with open(config_path, "w") as f:
            json.dump(config, f)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([binary, config_path], stdout=self.log,
                                        stderr=subprocess.STDOUT, preexec_fn=die_with_parent)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self):
        """True once /system answers; False when Orthanc exited first."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if self.request("GET", "/system", timeout=2)[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"Orthanc did not start within {START_TIMEOUT_S} s")

    def request(self, method, path, body=None, timeout=REQUEST_TIMEOUT_S):
        """(status, parsed JSON or raw bytes, headers)."""
        req = urllib.request.Request(self.url(path), data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, data, headers = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            status, data, headers = e.code, e.read(), e.headers
        try:
            return status, json.loads(data), headers
        except ValueError:
            return status, data, headers

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        """SIGTERM to the PID, SIGKILL if it does not exit in 10 s; returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------

def cli_report(args, images):
    result = subprocess.run([args.cli, "--model", args.model, "--threads", "1", "--json",
                             *[os.path.join(args.images, i) for i in images]],
                            capture_output=True, text=True, timeout=REQUEST_TIMEOUT_S)
    if result.returncode != 0:
        raise RuntimeError(f"r2gen-report failed: {result.stderr}")
    return json.loads(result.stdout)["report"]


def check_refuses_bad_model(binary, work, args):
    """A missing model file and one that is not a GGUF both stop Orthanc, with the plugin's line."""
    invalid = os.path.join(work, "invalid.gguf")
    with open(invalid, "wb") as f:
        f.write(b"this is not a GGUF file\n" * 8)
    for name, model in (("missing", os.path.join(work, "absent.gguf")), ("invalid", invalid)):
        orthanc = Orthanc(binary, work, f"{name}-model", free_port(),
                          {"plugin": args.plugin, "Model": model})
        try:
            started = orthanc.wait_ready()
        finally:
            status = orthanc.stop()
        line = next((l for l in orthanc.log_text().splitlines() if "R2Gen:" in l), "(no line)")
        check(not started and status != 0, f"a {name} model stops Orthanc from starting "
                                           f"(exit {status})")
        check("R2Gen: refusing to start: cannot load the model" in line and model in line,
              f"the log says why: {line}")


def upload(orthanc, path):
    with open(path, "rb") as f:
        status, answer, _ = orthanc.request("POST", "/instances", f.read())
    if status != 200:
        raise RuntimeError(f"upload of {path} failed: {status} {answer}")
    return answer["ID"], answer["ParentStudy"]


def check_report(name, status, answer, expected, instance_ids):
    if not check(status == 200, f"{name}: 200 (got {status}: {answer if status != 200 else ''})"):
        return
    check(answer["Report"] == expected, f"{name}: the report equals r2gen-report's for the same "
                                        f"pixels ({answer['Report'][:40]!r}...)")
    check([i["ID"] for i in answer["Instances"]] == instance_ids,
          f"{name}: instances used, in order: {[i['ViewPosition'] for i in answer['Instances']]}")
    model = answer["Model"]
    check(model["File"].endswith(".gguf") and model["Bytes"] > 0 and model["Library"]
          and model["Preset"] == "mimic", f"{name}: the model identity {model['File']}")
    timings = answer["Timings"]
    check(all(timings[k] >= 0 for k in ("QueueSeconds", "DecodeSeconds", "EncodeSeconds",
                                        "GenerateSeconds")) and timings["TotalSeconds"] > 0,
          f"{name}: timings {timings}")


def check_stored_report(orthanc, answer, study):
    stored = answer.get("StoredReport")
    if not check(isinstance(stored, str), f"the report was stored into the study ({stored})"):
        return
    _, tags, _ = orthanc.request("GET", f"/instances/{stored}/tags?simplify")
    _, parent, _ = orthanc.request("GET", f"/instances/{stored}/study")
    check(tags.get("Modality") == "SR" and tags.get("SOPClassUID") == "1.2.840.10008.5.1.4.1.1.88.11"
          and parent.get("ID") == study, "it is a Basic Text SR in the same study")
    # /tags leaves out long values: read the TextValue (0040,A160) of ContentSequence item 0 raw.
    _, text, _ = orthanc.request("GET", f"/instances/{stored}/content/0040-a730/0/0040-a160")
    check(isinstance(text, bytes) and text.decode().rstrip(" \0") == answer["Report"],
          "the SR's TEXT item holds the report")
    evidence = tags.get("CurrentRequestedProcedureEvidenceSequence", [{}])[0]
    referenced = [sop["ReferencedSOPInstanceUID"] for series in evidence.get("ReferencedSeriesSequence", [])
                  for sop in series["ReferencedSOPSequence"]]
    check(referenced == [i["SOPInstanceUID"] for i in answer["Instances"]],
          f"the SR names the images it was written from ({len(referenced)})")


def check_real_dicom(orthanc, args):
    """Real chest CR files when the third-party data is present (never part of the repository):
    a JPEG-baseline DICOM gives the report of its own JPEG frame; a JPEG 2000 one is 415 without
    the orthanc-gdcm plugin."""
    if not args.shared or not os.path.isdir(args.shared):
        print("note: no shared chest X-ray data; real DICOM checks skipped")
        return
    jpeg_id, _ = upload(orthanc, os.path.join(args.shared, "nih_siim_cr_jpegbaseline.dcm"))
    status, answer, _ = orthanc.request("POST", f"/r2gen/instances/{jpeg_id}/report")
    expected = cli_report(args, [os.path.join(args.shared, "nih_siim_cr_frame0.jpg")])
    check(status == 200 and answer["Report"] == expected,
          f"real JPEG-baseline CR: the report of its JPEG frame ({status})")
    j2k_id, _ = upload(orthanc, os.path.join(args.shared, "nema_wg04_RG1_J2KI_cr_chest.dcm"))
    status, answer, _ = orthanc.request("POST", f"/r2gen/instances/{j2k_id}/report")
    check(status == 415, f"real JPEG 2000 CR without orthanc-gdcm: 415 ({status} {answer})")


def check_errors(orthanc, other_study):
    status, answer, _ = orthanc.request("POST", "/r2gen/studies/0123abcd-0123abcd/report", b"")
    check(status == 404, f"unknown study: 404 ({status} {answer})")
    status, _, _ = orthanc.request("POST", "/r2gen/studies/not..an..id/report", b"")
    check(status == 404, f"malformed study id: 404 ({status})")
    status, _, _ = orthanc.request("POST", "/r2gen/instances/0123abcd-0123abcd/report", b"")
    check(status == 404, f"unknown instance: 404 ({status})")
    status, answer, _ = orthanc.request("POST", f"/r2gen/studies/{other_study}/report", b"")
    check(status == 400, f"a study without CR/DX views: 400 ({status} {answer})")
    status, _, _ = orthanc.request("GET", f"/r2gen/studies/{other_study}/report")
    check(status == 405, f"GET on a report route: 405 ({status})")


def check_burst(orthanc, study, expected):
    """BURST requests at once against 1 worker + a queue of 1: some must get 503 + Retry-After at
    once, the admitted ones the right report, and Orthanc must keep answering meanwhile."""
    results, barrier = [], threading.Barrier(BURST)

    def one():
        barrier.wait()
        results.append(orthanc.request("POST", f"/r2gen/studies/{study}/report", b""))

    threads = [threading.Thread(target=one) for _ in range(BURST)]
    for t in threads:
        t.start()
    system_latency = []
    while any(t.is_alive() for t in threads):
        start = time.monotonic()
        ok = orthanc.request("GET", "/system", timeout=5)[0] == 200
        system_latency.append(time.monotonic() - start if ok else float("inf"))
        time.sleep(0.02)
    for t in threads:
        t.join()
    statuses = sorted(r[0] for r in results)
    busy = [r for r in results if r[0] == 503]
    done = [r for r in results if r[0] == 200]
    check(len(results) == BURST and set(statuses) <= {200, 503} and busy and done,
          f"burst of {BURST}: only 200 and 503, both present ({statuses})")
    check(all(r[2].get("Retry-After") == "7" for r in busy), "every 503 says Retry-After: 7")
    check(all(r[1]["Report"] == expected for r in done), "every admitted request got the report")
    check(system_latency and max(system_latency) < 2.0,
          f"Orthanc kept answering during the burst ({len(system_latency)} GET /system, slowest "
          f"{max(system_latency or [0]):.3f} s)")


def run(binary, work, args):
    check_refuses_bad_model(binary, work, args)

    files = {name: os.path.join(work, f"{name}.dcm")
             for name in ("frontal", "lateral", "tinted", "other")}
    check(frontal_16bit_monochrome1(args.images, "A", files["frontal"]),
          "the 16-bit MONOCHROME1 frontal shows exactly the PNG's pixels (test's own VOI)")
    lateral_jpeg_baseline(args.images, "A", files["lateral"])
    secondary_capture(args.images, "tinted_rgb8.png", "A", 3, files["tinted"])
    secondary_capture(args.images, "frontal_gray8.png", "B", 1, files["other"])

    orthanc = Orthanc(binary, work, "orthanc", free_port(), {
        "plugin": args.plugin, "Model": args.model, "Threads": 1, "Preset": "mimic",
        "Concurrency": 1, "QueueSize": 1, "RetryAfter": 7, "StoreReport": True})
    try:
        if not check(orthanc.wait_ready(), "Orthanc starts with the plugin"):
            print(orthanc.log_text())
            return
        status, plugins, _ = orthanc.request("GET", "/plugins")
        check("r2gen" in plugins, f"the plugin is loaded ({plugins})")
        ids = {}
        for name, path in files.items():
            ids[name] = upload(orthanc, path)
        study, other_study = ids["frontal"][1], ids["other"][1]

        status, answer, _ = orthanc.request("POST", f"/r2gen/instances/{ids['frontal'][0]}/report")
        check_report("instance route, 16-bit MONOCHROME1 CR", status, answer,
                     cli_report(args, ["frontal_gray8.png"]), [ids["frontal"][0]])
        status, answer, _ = orthanc.request("POST", f"/r2gen/instances/{ids['tinted'][0]}/report")
        check_report("instance route, RGB secondary capture", status, answer,
                     cli_report(args, ["tinted_rgb8.png"]), [ids["tinted"][0]])

        expected = cli_report(args, ["frontal_gray8.png", "lateral_gray8.jpg"])
        status, answer, _ = orthanc.request("POST", f"/r2gen/studies/{study}/report", b"")
        check_report("study route, frontal + JPEG lateral (OT and SR skipped)", status, answer,
                     expected, [ids["frontal"][0], ids["lateral"][0]])
        if status == 200:
            check_stored_report(orthanc, answer, study)

        check_real_dicom(orthanc, args)
        check_errors(orthanc, other_study)
        check_burst(orthanc, study, expected)
        check(orthanc.alive() and orthanc.request("GET", "/system")[0] == 200,
              "Orthanc is still up")
    finally:
        status = orthanc.stop()
    check(status == 0, f"Orthanc stopped cleanly on SIGTERM (exit {status})")
    log = orthanc.log_text()
    check("R2Gen: ready" in log, "the start-up log line: " +
          next((l for l in log.splitlines() if "R2Gen: ready" in l), "(none)"))


def enter_private_network():
    """As root: re-run this script inside a new network namespace with only loopback up. Returns
    when already inside (or when namespaces are unavailable)."""
    if os.environ.get("R2GEN_ORTHANC_NETNS") or os.geteuid() != 0 or not shutil.which("unshare"):
        if os.environ.get("R2GEN_ORTHANC_NETNS"):
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
        return
    if subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode != 0:
        print("note: cannot create a network namespace; running on the host's loopback")
        return
    env = dict(os.environ, R2GEN_ORTHANC_NETNS="1")
    os.execvpe("unshare", ["unshare", "-n", "--", sys.executable, *sys.argv], env)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugin")
    parser.add_argument("--cli")
    parser.add_argument("--model")
    parser.add_argument("--images")
    parser.add_argument("--shared", help="the third-party chest X-ray folder, when present")
    parser.add_argument("--skip", help="skip with this reason")
    args = parser.parse_args()
    # Orthanc reads relative paths in its configuration relative to the configuration file.
    for name in ("plugin", "cli", "model", "images", "shared"):
        if getattr(args, name):
            setattr(args, name, os.path.abspath(getattr(args, name)))
    if args.skip:
        skip(args.skip)
    binary = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if os.path.exists("/usr/sbin/Orthanc")
                                         else None)
    if not binary:
        skip("Orthanc is not installed (Debian package orthanc)")
    if not args.plugin:
        skip("the plugin was not built (needs orthanc-dev and libjson-c-dev)")
    try:
        import numpy, pydicom, PIL  # noqa: F401  (only to skip cleanly)
    except ImportError as e:
        skip(f"{e.name} is missing (python3-numpy, python3-pydicom, python3-pil)")
    enter_private_network()

    def on_signal(signum, frame):
        raise TimeoutError(f"signal {signum}: giving up")

    signal.signal(signal.SIGALRM, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.alarm(DEADLINE_S)
    with tempfile.TemporaryDirectory(prefix="r2gen-orthanc-") as work:
        run(binary, work, args)
    signal.alarm(0)
    print(f"{sum(1 for _ in failures)} failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
