"""`cyclegan serve`: a local web page to try a model: drop a photo, see it translated, download the result.

A small Starlette app served by uvicorn (`pip install 'cyclegan[serve]'`: three small pure-Python packages, where
Gradio would bring a hundred MB of front-end and data-science dependencies for one page). The page is plain HTML
with a few lines of JavaScript that post the file's bytes as they are (so no multipart parser is needed):

    GET  /                      the page
    POST /translate?direction=  image bytes -> the translation as PNG (the input's size); a bad file -> 400 with
                                {"error": "..."}, shown on the page as one readable line
    GET  /health                {"directions": [...], "model": "..."}

Large photos go through the tiled path (cyclegan.tiled: the same result in less memory) where the generator
allows it. Translations run one at a time: one model, one device.
"""

from __future__ import annotations

import contextlib
import html
import io
import socket
import threading
import time
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UserError, first_line

MAX_BYTES = 40 * 1024 * 1024  # an upload larger than this is refused before it is decoded
MAX_PIXELS = 6000 * 6000  # and an image with more pixels (a decompression bomb, or too slow to be worth it)
TILE = 512  # photos larger than this on a side are translated in tiles, where the generator allows it


class Service:
    """The model behind the page: one translator per direction, loaded at start, used one request at a time."""

    def __init__(self, model_path: str | Path, *, device=None, tile: int = TILE):
        from .api import Model
        from .translate import load_translator

        self.path = Path(model_path)
        self.directions = Model(self.path).directions
        self.translators = {}
        for d in self.directions:
            try:
                self.translators[d] = load_translator(self.path, d, device, tile=tile)
            except UserError as e:
                if "--tile" not in str(e):
                    raise
                self.translators[d] = load_translator(self.path, d, device)  # a generator that cannot be tiled
        self.lock = threading.Lock()
        self.description = next(iter(self.translators.values())).description

    def translate(self, data: bytes, direction: str) -> bytes:
        """Image file bytes -> the translation as PNG bytes; UserError with a readable line for bad input."""
        from .translate import seeded

        if direction not in self.translators:
            raise UserError(f"this model translates {', '.join(self.directions)}, not {direction!r}")
        if not data:
            raise UserError("the upload is empty; choose an image file")
        image = decode_image(data)
        t = self.translators[direction]
        with self.lock, seeded(0, t.device):
            try:
                out = t.image(image)
            except (RuntimeError, MemoryError) as e:  # out of memory on a huge photo: say so, keep serving
                raise UserError(
                    f"could not translate this {image.width}x{image.height} image: {first_line(e)}"
                ) from None
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        return buf.getvalue()


def decode_image(data: bytes) -> Image.Image:
    """Uploaded bytes -> an upright PIL image (EXIF orientation applied), or a UserError that says why not."""
    try:
        with Image.open(io.BytesIO(data)) as f:
            if f.width * f.height > MAX_PIXELS:
                raise UserError(
                    f"the image is {f.width}x{f.height}: at most {MAX_PIXELS // 1_000_000} megapixels, "
                    "please scale it down"
                )
            image = ImageOps.exif_transpose(f)
            image.load()
    except UnidentifiedImageError:
        raise UserError("this file is not an image that can be read (try a JPEG or PNG photo)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f"this image cannot be read: {first_line(e)}") from None
    return image


def create_app(service: Service):
    """The Starlette app of a Service."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    page = render_page(service)

    async def index(request: Request):
        return HTMLResponse(page)

    async def health(request: Request):
        return JSONResponse({"directions": list(service.directions), "model": service.description})

    async def translate(request: Request):
        size = int(request.headers.get("content-length") or 0)
        if size > MAX_BYTES:
            return JSONResponse({"error": f"the file is {size / 2**20:.0f} MB; at most {MAX_BYTES // 2**20} MB"}, 413)
        data = await request.body()
        direction = request.query_params.get("direction", service.directions[0])
        try:
            png = await run_in_threadpool(service.translate, data, direction)
        except UserError as e:
            return JSONResponse({"error": str(e)}, 400)
        return Response(png, media_type="image/png")

    return Starlette(
        routes=[Route("/", index), Route("/health", health), Route("/translate", translate, methods=["POST"])]
    )


def render_page(service: Service) -> str:
    options = "".join(f'<option value="{d}">{d[0]} &rarr; {d[-1]}</option>' for d in service.directions)
    return PAGE.replace("{{OPTIONS}}", options).replace("{{MODEL}}", html.escape(service.description))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cyclegan</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:70em;padding:0 1em;color:#222}
#drop{border:2px dashed #999;border-radius:8px;padding:1.2em;text-align:center;background:#fafafa}
#drop.over{background:#eef5ff;border-color:#36c}
.pair{display:flex;gap:1em;margin-top:1em}.pair figure{flex:1;margin:0}
.pair img{max-width:100%;border:1px solid #ddd;display:block}
#error{color:#b00020;font-weight:600;min-height:1.4em;margin-top:.8em}
#status{color:#555;margin-left:1em}
</style></head><body>
<h1>cyclegan</h1>
<p>Model: <code>{{MODEL}}</code></p>
<div id="drop"><p>Drop a photo here, or <input type="file" id="file" accept="image/*"></p>
<label>Direction <select id="direction">{{OPTIONS}}</select></label><span id="status"></span></div>
<div id="error" role="alert"></div>
<div class="pair">
<figure><figcaption>Input</figcaption><img id="input" alt=""></figure>
<figure><figcaption>Translation <a id="download" href="#" download hidden>download</a></figcaption>
<img id="output" alt=""></figure>
</div>
<script>
const $ = (id) => document.getElementById(id);
let current = null;
async function translate() {
  if (!current) return;
  $("error").textContent = ""; $("status").textContent = "translating...";
  $("output").removeAttribute("src"); $("download").hidden = true;
  const direction = $("direction").value;
  try {
    const r = await fetch("translate?direction=" + encodeURIComponent(direction), {method: "POST", body: current});
    if (!r.ok) {
      let message = "the server could not translate this file (" + r.status + ")";
      try { message = (await r.json()).error || message; } catch (e) {}
      throw new Error(message);
    }
    const url = URL.createObjectURL(await r.blob());
    $("output").src = url;
    $("download").href = url;
    $("download").download = (current.name || "image").replace(/\\.[^.]*$/, "") + "_" + direction + ".png";
    $("download").hidden = false;
    $("status").textContent = "";
  } catch (e) {
    $("status").textContent = "";
    $("error").textContent = e.message;
  }
}
function choose(file) {
  if (!file) return;
  current = file;
  $("input").src = URL.createObjectURL(file);
  translate();
}
$("file").addEventListener("change", (e) => choose(e.target.files[0]));
$("direction").addEventListener("change", translate);
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over"); choose(e.dataTransfer.files[0]);
});
</script>
</body></html>
"""


@contextlib.contextmanager
def running(app, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0):
    """Serve `app` from a background thread (tests, scripts); yields the page's URL. port 0: a free one."""
    import uvicorn

    if port == 0:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    start = time.time()
    while not server.started:
        if not thread.is_alive() or time.time() - start > timeout:
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout)


def serve(model_path: str | Path, *, host: str = "127.0.0.1", port: int = 7860, device=None) -> None:
    """Load the model and serve the page until Ctrl-C."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise UserError(
            "cyclegan serve needs its web server: pip install 'cyclegan[serve]' (starlette, uvicorn)"
        ) from None
    app = create_app(Service(model_path, device=device))
    print(f"serving {model_path} on http://{host}:{port} (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
