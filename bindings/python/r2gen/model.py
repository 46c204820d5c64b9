"""Model: one r2gen_ctx (a loaded model plus the state of one study) as a Python object."""

import codecs
import contextlib
import ctypes
import queue
import threading
from ctypes import POINTER, byref, c_float, c_int32, c_size_t, c_void_p

from . import _capi, _images
from .errors import check

# The decoding keywords of report(), generate(), stream() and generate_from_embeddings(): the
# fields of r2gen_generate_params that hold plain values, under their C names.
DECODING_FIELDS = ("num_beams", "min_new_tokens", "max_new_tokens", "repetition_penalty",
                   "length_penalty", "do_sample", "temperature", "top_k", "top_p", "seed",
                   "ignore_eos")

PRESETS = {"mimic": _capi.PRESET_MIMIC_CXR, "iu": _capi.PRESET_IU_XRAY}

GRAY16_MAPPINGS = {"clamp": _capi.GRAY16_CLAMP, "window": _capi.GRAY16_WINDOW,
                   "minmax": _capi.GRAY16_MINMAX}


def version():
    """The library's version and build features, e.g. "0.1.0 (jpeg: libjpeg-turbo)"."""
    return _capi.lib().r2gen_version().decode()


def decoding_defaults(preset=None):
    """The library's decoding settings (preset None: r2gen_generate_params_default) as a dict."""
    params = _base_params(_capi.lib(), preset)
    return {name: getattr(params, name) for name in DECODING_FIELDS}


def _base_params(lib, preset):
    if preset is None:
        return lib.r2gen_generate_params_default()
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {sorted(PRESETS)}")
    return lib.r2gen_generate_params_preset(PRESETS[preset])


def _numpy():
    try:
        import numpy
    except ImportError as e:
        raise ImportError("this r2gen function returns or takes numpy arrays: install numpy") from e
    return numpy


class _Callbacks:
    """The Python callbacks of one generation, wrapped as C function pointers. An exception
    inside a callback must not unwind through C: it is kept, the callback returns non-zero (which
    cancels the generation), and raise_pending() re-raises it once the C call has returned."""

    def __init__(self):
        self.pending = None

    def wrap(self, c_type, function, convert):
        def trampoline(user_data, *args):
            if self.pending is not None:
                return 1
            try:
                return 1 if function(*convert(*args)) else 0
            except BaseException as e:  # KeyboardInterrupt too: cancel, then re-raise
                self.pending = e
                return 1
        return c_type(trampoline)

    def raise_pending(self):
        if self.pending is not None:
            error, self.pending = self.pending, None
            raise error


class Model:
    """A loaded R2GenGPT model and the views of the current study.

    ``Model(path, llm_path=None, threads=None, kv_cache_f16=False)`` loads a GGUF (or a vision
    GGUF plus a separate LLaMA GGUF in llm_path); threads None uses every online CPU. Use it as a
    context manager or call close(). One Model is used by one thread at a time (calls from other
    threads wait); fork() gives another Model on the same weights for another thread.
    """

    def __init__(self, path, llm_path=None, threads=None, kv_cache_f16=False):
        self._ctx = None
        lib = _capi.lib()
        params = lib.r2gen_load_params_default()
        if llm_path is not None:
            params.llm_path = _capi.c_string(llm_path, "llm_path")
        if threads is not None:
            params.n_threads = threads
        params.kv_cache_f16 = 1 if kv_cache_f16 else 0
        ctx = _capi.ctx_p()
        check(lib.r2gen_load(_capi.c_string(path, "path"), byref(params), byref(ctx)))
        self._adopt(ctx)

    def _adopt(self, ctx):
        self._lib = _capi.lib()
        self._ctx = ctx
        self._lock = threading.Lock()
        self._owner = None

    @contextlib.contextmanager
    def _using(self):
        """Hold the context for one call: serialises threads and refuses re-entry from a callback
        (the C context is in the middle of a call then)."""
        if self._owner == threading.get_ident():
            raise RuntimeError("a Model cannot be used from inside its own callbacks")
        with self._lock:
            if self._ctx is None:
                raise ValueError("the Model is closed")
            self._owner = threading.get_ident()
            try:
                yield self._ctx
            finally:
                self._owner = None

    # ---- life cycle ----

    def close(self):
        """Free the context (the weights go when the last Model sharing them is closed)."""
        if self._ctx is None:
            return
        with self._using() as ctx:
            self._lib.r2gen_free(ctx)
            self._ctx = None

    @property
    def closed(self):
        return self._ctx is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_ctx", None) is not None:
            self._lib.r2gen_free(self._ctx)
            self._ctx = None

    def fork(self):
        """A new Model on the same weights with the same settings and an empty study."""
        forked = _capi.ctx_p()
        with self._using() as ctx:
            check(self._lib.r2gen_ctx_fork(ctx, byref(forked)), ctx, ctx_message=False)
        model = Model.__new__(Model)
        model._adopt(forked)
        return model

    # ---- model facts ----

    @property
    def n_embd(self):
        """The language model's embedding width."""
        with self._using() as ctx:
            return self._lib.r2gen_n_embd(ctx)

    @property
    def n_vocab(self):
        with self._using() as ctx:
            return self._lib.r2gen_n_vocab(ctx)

    @property
    def n_views(self):
        """Views in the current study."""
        with self._using() as ctx:
            return self._lib.r2gen_n_views(ctx)

    # ---- images ----

    def set_image_options(self, gray16_mapping="clamp", window_center=0.0, window_width=0.0):
        """How later 16-bit grey images become 8-bit: "clamp" (the reference's, default),
        "window" (DICOM VOI window; window_width >= 1) or "minmax"."""
        if gray16_mapping not in GRAY16_MAPPINGS:
            raise ValueError(f"unknown gray16_mapping {gray16_mapping!r}; use one of "
                             f"{sorted(GRAY16_MAPPINGS)}")
        options = self._lib.r2gen_image_options_default()
        options.gray16_mapping = GRAY16_MAPPINGS[gray16_mapping]
        options.window_center, options.window_width = window_center, window_width
        with self._using() as ctx:
            check(self._lib.r2gen_set_image_options(ctx, byref(options)), ctx)

    def encode(self, image):
        """Add one view to the current study: a path, the bytes of an image file, a numpy array
        (uint8/uint16 HxW, uint8 HxWx3 or HxWx4) or a PIL image."""
        with self._using() as ctx:
            check(_images.encode(self._lib, ctx, image), ctx)

    def clear(self):
        """Start a new study: forget every view."""
        with self._using() as ctx:
            self._lib.r2gen_clear_images(ctx)

    def view_features(self, view):
        """The Swin last_hidden_state of one view: float32 [n_tokens, n_dims]."""
        n_views = self.n_views
        if not -n_views <= view < n_views:
            raise IndexError(f"view {view} of a study with {n_views} views")
        return self._matrix(self._lib.r2gen_get_view_features, view % n_views)

    def image_embeddings(self):
        """The study's image embeddings (view mean -> llama_proj -> layer_norm): float32
        [n_tokens, n_embd]."""
        return self._matrix(self._lib.r2gen_get_image_embeddings)

    def _matrix(self, function, *args):
        numpy = _numpy()
        rows, cols = c_size_t(), c_size_t()
        with self._using() as ctx:
            check(function(ctx, *args, None, 0, byref(rows), byref(cols)), ctx, ctx_message=False)
            out = numpy.empty((rows.value, cols.value), numpy.float32)
            check(function(ctx, *args, out.ctypes.data_as(POINTER(c_float)), out.size, None, None),
                  ctx, ctx_message=False)
        return out

    # ---- text ----

    def tokenize(self, text):
        """Token ids of text (Llama-2 tokenizer, no special tokens added)."""
        data = _capi.c_string(text, "text")
        count = c_size_t()
        with self._using() as ctx:
            check(self._lib.r2gen_tokenize(ctx, data, None, 0, byref(count)), ctx,
                  ctx_message=False)
            ids = (c_int32 * count.value)()
            check(self._lib.r2gen_tokenize(ctx, data, ids, count.value, byref(count)), ctx,
                  ctx_message=False)
        return list(ids)

    def detokenize(self, ids):
        """The text of token ids as LlamaTokenizer.decode gives it (special tokens kept)."""
        c_ids = (c_int32 * len(ids))(*ids)
        text = c_void_p()
        with self._using() as ctx:
            try:
                check(self._lib.r2gen_detokenize(ctx, c_ids, len(ids), byref(text)), ctx,
                      ctx_message=False)
                return ctypes.string_at(text.value).decode("utf-8", "replace")
            finally:
                self._lib.r2gen_string_free(text)

    def token_embeddings(self, ids):
        """Input embeddings of token ids: float32 [len(ids), n_embd], to build sequences for
        generate_from_embeddings()."""
        numpy = _numpy()
        c_ids = (c_int32 * len(ids))(*ids)
        with self._using() as ctx:
            out = numpy.empty((len(ids), self._lib.r2gen_n_embd(ctx)), numpy.float32)
            check(self._lib.r2gen_get_token_embeddings(
                ctx, c_ids, len(ids), out.ctypes.data_as(POINTER(c_float)), out.size),
                ctx, ctx_message=False)
        return out

    def last_tokens(self):
        """The new token ids of the last generation (ending with </s> = 2 when it stopped there)."""
        ids, count = POINTER(c_int32)(), c_size_t()
        with self._using() as ctx:
            check(self._lib.r2gen_get_report_tokens(ctx, byref(ids), byref(count)), ctx,
                  ctx_message=False)
            return ids[:count.value] if count.value else []

    # ---- generation ----
    #
    # Decoding keywords, named as the fields of r2gen_generate_params: num_beams, min_new_tokens,
    # max_new_tokens, repetition_penalty, length_penalty, do_sample, temperature, top_k, top_p,
    # seed, ignore_eos, prompt (a text with "<ImageHere>" once); preset="mimic" or "iu" starts from
    # that data set's settings instead of the default (MIMIC-CXR); progress=callable(step,
    # max_steps) is called after every step and cancels the generation (CancelledError) by
    # returning a true value. Unset keywords keep the library's value.

    def report(self, images, **decoding):
        """Clear the study, add the views (one image or a list of them), write the report."""
        views = [images] if _images.is_single_view(images) else list(images)
        params, callbacks = self._decoding(decoding)
        with self._using() as ctx:
            self._lib.r2gen_clear_images(ctx)
            for view in views:
                check(_images.encode(self._lib, ctx, view), ctx)
            return self._run(ctx, self._lib.r2gen_generate_report, params, callbacks)

    def generate(self, **decoding):
        """The report of the current study."""
        params, callbacks = self._decoding(decoding)
        with self._using() as ctx:
            return self._run(ctx, self._lib.r2gen_generate_report, params, callbacks)

    def generate_from_embeddings(self, embeddings, **decoding):
        """A report from caller-made input embeddings, float32 [n_positions, n_embd] used as-is
        (include the <s> embedding). The prompt keyword does not apply."""
        numpy = _numpy()
        rows = numpy.ascontiguousarray(embeddings, dtype=numpy.float32)
        params, callbacks = self._decoding(decoding)
        with self._using() as ctx:
            n_embd = self._lib.r2gen_n_embd(ctx)
            if rows.ndim != 2 or rows.shape[1] != n_embd:
                raise ValueError(f"embeddings must be [n_positions, {n_embd}], not {rows.shape}")
            data = rows.ctypes.data_as(POINTER(c_float))

            def call(c, p, out):
                return self._lib.r2gen_generate_from_embeddings(c, data, rows.shape[0], p, out)
            return self._run(ctx, call, params, callbacks)

    def stream(self, **decoding):
        """Generate the report of the current study as an iterator of text pieces, each given as
        soon as its token is decided. Greedy search and sampling only (num_beams=1): beam search
        knows no token for sure until it ends.

        The generation runs in a worker thread (ctypes releases the GIL during the C call) that
        hands pieces over through a queue, so pieces arrive while later tokens are computed;
        progress callbacks run in that thread, and other calls on this Model wait until the
        generation has finished. Leaving the loop early cancels the generation.
        Joined, the pieces are the report (whose trailing whitespace the report strips); the
        generator's return value is the report itself."""
        params, callbacks = self._decoding(decoding)
        if params.num_beams != 1:
            raise ValueError("stream() needs num_beams=1 (greedy search or sampling)")
        return self._stream(params, callbacks)

    def _stream(self, params, callbacks):
        pieces = queue.Queue()
        stop = threading.Event()
        outcome = {}

        def on_token(token_id, piece):
            pieces.put(piece)
            return stop.is_set()

        params.on_token = callbacks.wrap(_capi.TOKEN_CALLBACK, on_token,
                                         lambda token_id, data, size: (
                                             token_id, ctypes.string_at(data, size) if size
                                             else b""))

        def worker():
            try:
                with self._using() as ctx:
                    outcome["report"] = self._run(ctx, self._lib.r2gen_generate_report, params,
                                                  callbacks)
            except BaseException as e:
                outcome["error"] = e
            finally:
                pieces.put(None)

        thread = threading.Thread(target=worker, name="r2gen-stream", daemon=True)
        thread.start()
        # A token may end inside a UTF-8 character (byte-fallback pieces): decode incrementally.
        utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            for piece in iter(pieces.get, None):
                text = utf8.decode(piece)
                if text:
                    yield text
            tail = utf8.decode(b"", final=True)
            if tail:
                yield tail
        finally:
            stop.set()
            thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["report"]

    def _decoding(self, decoding):
        """r2gen_generate_params from decoding keywords, plus the callbacks they reference."""
        decoding = dict(decoding)
        params = _base_params(self._lib, decoding.pop("preset", None))
        callbacks = _Callbacks()
        progress = decoding.pop("progress", None)
        if progress is not None:
            params.progress = callbacks.wrap(_capi.PROGRESS_CALLBACK, progress,
                                             lambda step, max_steps: (step, max_steps))
        prompt = decoding.pop("prompt", None)
        if prompt is not None:
            params.prompt = _capi.c_string(prompt, "prompt")
        for name, value in decoding.items():
            if name not in DECODING_FIELDS:
                raise TypeError(f"unknown decoding keyword {name!r}")
            setattr(params, name, value)
        return params, callbacks

    def _run(self, ctx, function, params, callbacks):
        """Call a report-writing C function, re-raise a callback's exception, return the text."""
        report = c_void_p()
        try:
            status = function(ctx, byref(params), byref(report))
            callbacks.raise_pending()
            check(status, ctx)
            return ctypes.string_at(report.value).decode("utf-8", "replace")
        finally:
            self._lib.r2gen_string_free(report)
