"""``ft-harness data synth``: question/answer pairs from a model, written as chat JSONL."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from harness.backends.http import ClientConfig, RemoteCallError
from harness.backends.openai.client import ChatGenerator
from harness.cli.arguments import non_negative_number, positive_int, positive_number, seed
from harness.data.records import Message
from harness.data.synth import synthesize, write_chat_jsonl
from harness.errors import HarnessError
from harness.protocol import DecodeParams

EXIT_OK, EXIT_FINDINGS = 0, 1


def add_synth_parser(data_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``synth`` to the ``data`` command group (or any subparsers object)."""
    parser = data_subparsers.add_parser(
        "synth", help="ask a model for question/answer pairs and write chat JSONL",
        description="Ask an OpenAI-compatible model for question/answer pairs about a topic, "
                    "parse them (JSON array or Q:/A: lines), drop invalid and duplicate pairs, "
                    "validate and write chat JSONL. Exit 0 when N pairs were written, 1 when "
                    "fewer could be collected (those are still written), 3 on errors.")
    parser.add_argument("out", metavar="OUT.jsonl", help="output file (chat JSONL)")
    parser.add_argument("--endpoint", default=None, metavar="URL",
                        help="base URL of the API, e.g. http://127.0.0.1:8000/v1 "
                             "(default: $OPENAI_BASE_URL, else OpenAI)")
    parser.add_argument("--model", required=True, help="model id to ask")
    parser.add_argument("--topic", required=True, help="what the questions are about")
    parser.add_argument("--n", type=positive_int, required=True, help="number of pairs wanted")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR",
                        help="environment variable holding the API key (default OPENAI_API_KEY)")
    parser.add_argument("--system", default=None, help="system prompt added to every example")
    parser.add_argument("--per-request", type=positive_int, default=10, metavar="K",
                        help="pairs asked for per request (default 10)")
    parser.add_argument("--max-requests", type=positive_int, default=None, metavar="R",
                        help="give up after R requests (default: 3 per batch + 2)")
    parser.add_argument("--temperature", type=non_negative_number, default=0.7)
    parser.add_argument("--max-tokens", type=positive_int, default=1024)
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--timeout", type=positive_number, default=120.0, metavar="S",
                        help="per-request timeout in seconds (default 120)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run_synth)
    return parser


def register(subparsers: Any) -> None:
    """Top-level ``ft-harness synth`` (same as ``ft-harness data synth``)."""
    add_synth_parser(subparsers)


def endpoint_asker(config: Any, model: str, *, temperature: float, max_tokens: int,
                   seed: int) -> Callable[[list[Message], int], str]:
    """The ``ask`` callable :func:`harness.data.synth.synthesize` needs, against a chat endpoint."""

    generator = ChatGenerator(config, model)

    def ask(messages: list[Message], number: int) -> str:
        params = DecodeParams(max_new_tokens=max_tokens, temperature=temperature, seed=seed + number)
        try:
            return generator.generate_one(messages, params).text
        except RemoteCallError as exc:
            raise HarnessError(f"synthesising data with {model!r}: {exc}") from None

    return ask


def run_synth(args: argparse.Namespace) -> int:
    """Collect the pairs, write them, report what was dropped."""

    config = ClientConfig.resolve(base_url=args.endpoint, api_key_env=args.api_key_env,
                                  timeout_s=args.timeout)

    def progress(line: str) -> None:
        if not args.quiet:
            print(f"[synth] {line}", file=sys.stderr, flush=True)

    ask = endpoint_asker(config, args.model, temperature=args.temperature,
                         max_tokens=args.max_tokens, seed=args.seed)
    result = synthesize(ask, args.topic, args.n, per_request=args.per_request,
                        max_requests=args.max_requests, progress=progress)
    if result.pairs:
        write_chat_jsonl(args.out, result.pairs, system=args.system)
    print(f"{args.out}: {result.summary()}")
    return EXIT_OK if len(result.pairs) >= args.n else EXIT_FINDINGS
