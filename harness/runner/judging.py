"""Judges at work: render each judgment's prompt, ask the judge model (cached, priced, under the cost
limit), read the verdicts and put the per-example metric ``judge:<name>`` and the judge's bias
figures on the candidate's result."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.http import call_endpoint, make_client, map_concurrently
from harness.backends.openai.client import chat_request
from harness.backends.openai.options import client_config_from_options, pricing_from_spec
from harness.cache import cache_key
from harness.context import BuildContext
from harness.cost import usage_cost
from harness.errors import HarnessError
from harness.metrics._common import mean
from harness.metrics.judging import (
    expected_rating,
    length_bias,
    pairwise_messages,
    parse_pairwise,
    parse_rating,
    pointwise_messages,
    self_consistency,
    spearman,
    swap_verdict,
)
from harness.protocol import DecodeParams
from harness.results import EvalResult
from harness.spec import SuiteSpec
from harness.spec.judges import REFERENCE, JudgeSpec

#: judge replies shown in the report when they could not be read
SHOWN_UNREAD = 3
TOP_LOGPROBS = 20


class JudgeError(HarnessError):
    """A judge could not grade a candidate (unreadable past its threshold, cost limit, endpoint)."""


@dataclass(frozen=True)
class Reply:
    """One judgment: the judge's text, token usage and (G-Eval) probability-weighted rating."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    expected: float | None = None
    cached: bool = False


def _call_id(messages: list[dict[str, str]], sample: int) -> str:
    text = json.dumps([messages, sample], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class JudgeClient:
    """Asks one judge model through the shared HTTP layer; judgments cached by (judge identity,
    rendered prompt, sample), so only judgments whose prompt changed are asked again."""

    def __init__(self, ctx: BuildContext, judge: JudgeSpec, where: str) -> None:

        self.ctx, self.judge = ctx, judge
        self.config = client_config_from_options(judge.client, where)
        self.endpoint = self.config.public_base_url
        self.identity = {"model": judge.model, "endpoint": self.endpoint, "temperature": judge.temperature,
                         "max_tokens": judge.max_tokens, "logprobs": judge.logprobs, "seed": judge.seed}

    def _key(self) -> str:

        return cache_key("judgments", self.identity)

    def _ask(self, item: tuple[list[dict[str, str]], int]) -> Reply:

        messages, sample = item
        params = DecodeParams(max_new_tokens=self.judge.max_tokens, temperature=self.judge.temperature,
                              seed=self.judge.seed + sample)
        extra = {"logprobs": True, "top_logprobs": TOP_LOGPROBS} if self.judge.logprobs else None
        request = chat_request(self.judge.model, messages, params, max_tokens_field=self.config.max_tokens_field,
                               extra=extra)
        client = self._client if self._client is not None else make_client(self.config)
        response = call_endpoint(self.config, lambda: client.chat.completions.create(**request),
                                 what=f"judge {self.judge.name!r} ({self.judge.model})")
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice is not None else ""
        expected = None
        content = getattr(getattr(choice, "logprobs", None), "content", None) if choice is not None else None
        if self.judge.logprobs and content:
            top = [{"token": t.token, "logprob": t.logprob} for t in (content[0].top_logprobs or [])]
            expected = expected_rating(top, self.judge.scale)
        usage = response.usage
        return Reply(text.strip(), int(usage.prompt_tokens) if usage else 0,
                     int(usage.completion_tokens) if usage else 0, expected)

    _client: Any = None

    def ask(self, calls: Sequence[tuple[list[dict[str, str]], int]]) -> list[Reply]:
        """A reply per (messages, sample): cached ones read back, the rest asked (within the cost limit)."""

        key = self._key()
        stored = self.ctx.cache.get_json(key)
        known: dict[str, Any] = stored if isinstance(stored, dict) else {}
        ids = [_call_id(m, s) for m, s in calls]
        todo = {i: call for i, call in zip(ids, calls, strict=True) if i not in known}
        if todo:
            self._check_cost(list(todo.values()))
            self._client = make_client(self.config)
            replies = map_concurrently(self._ask, list(todo.values()), self.config.concurrency)
            for call_id, reply in zip(todo, replies, strict=True):
                known[call_id] = {"text": reply.text, "prompt_tokens": reply.prompt_tokens,
                                  "completion_tokens": reply.completion_tokens, "expected": reply.expected}
            self.ctx.cache.put_json(key, known)
        return [Reply(**known[i], cached=i not in todo) for i in ids]

    def _check_cost(self, calls: list[tuple[list[dict[str, str]], int]]) -> None:
        """Refuse judgments whose estimated price exceeds ``--ft-openai-max-cost``."""
        limit = self.ctx.options.openai_max_cost
        if limit is None:
            return

        price = pricing_from_spec(self.ctx.spec.pricing).inference_price(self.judge.model)
        prompt = sum(math.ceil(sum(len(m["content"]) for m in messages) / 4) for messages, _ in calls)
        completion = len(calls) * self.judge.max_tokens
        if price is None:
            raise JudgeError(f"judge {self.judge.name!r}: refusing {len(calls)} judgment(s) under "
                             f"--ft-openai-max-cost ${limit:.2f}: no price for {self.judge.model!r} in the pricing "
                             "table (add it under [harness.pricing])")
        cost = usage_cost(prompt, completion, price)
        if cost > limit:
            raise JudgeError(f"judge {self.judge.name!r}: refusing {len(calls)} judgment(s): estimated ${cost:.4f} "
                             f"(~{prompt} prompt tokens at 4 characters each + {completion} completion tokens) "
                             f"exceeds --ft-openai-max-cost ${limit:.2f}")


def _words(text: str) -> int:
    return len(text.split())


def _usage(replies: Sequence[Reply], judge: JudgeSpec, pricing: Any) -> dict[str, Any]:

    prompt = sum(r.prompt_tokens for r in replies)
    completion = sum(r.completion_tokens for r in replies)
    new = [r for r in replies if not r.cached]
    price = pricing.inference_price(judge.model)
    return {"calls": len(replies), "cached_calls": len(replies) - len(new), "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cost_usd": usage_cost(prompt, completion, price) if price is not None else None,
            "new_cost_usd": (usage_cost(sum(r.prompt_tokens for r in new), sum(r.completion_tokens for r in new),
                                        price) if price is not None else None)}


def _check_readable(judge: JudgeSpec, where: str, unread: list[str], total: int) -> None:
    share = len(unread) / total if total else 0.0
    if share > judge.max_unparseable:
        shown = "; ".join(repr(t[:80]) for t in unread[:SHOWN_UNREAD])
        raise JudgeError(f"judge {judge.name!r} on {where}: {len(unread)} of {total} judgments unparseable "
                         f"({share:.1%} > max_unparseable {judge.max_unparseable:.0%}); the metric is not scored "
                         f"(first replies: {shown})")


def check_readable(judge: JudgeSpec, where: str, unread: list[str], total: int) -> None:
    """A :class:`JudgeError` when the share of unreadable judgments exceeds the judge's ``max_unparseable``."""
    _check_readable(judge, where, unread, total)


def judge_usage(replies: Sequence[Reply], judge: JudgeSpec, ctx: BuildContext) -> dict[str, Any]:
    """Calls, tokens and cost of a judge's replies (priced from the spec's pricing table)."""
    return _usage(replies, judge, pricing_from_spec(ctx.spec.pricing))


def judge_pairwise(client: JudgeClient, result: EvalResult, others: Sequence[str]) -> tuple[list[float], dict]:
    """Each item judged in both orders per sample: +1 / 0 / −1 per sample, averaged per item."""
    judge = client.judge
    calls: list[tuple[Any, int]] = []
    plan: list[tuple[int, int, int | None, int | None]] = []
    for i, (question, mine, theirs) in enumerate(zip(result.inputs, result.predictions, others, strict=True)):
        for sample in range(judge.samples):
            if mine == theirs:
                plan.append((i, sample, None, None))
                continue
            plan.append((i, sample, len(calls), len(calls) + 1))
            calls.append((pairwise_messages(judge.rubric, question, mine, theirs), sample))
            calls.append((pairwise_messages(judge.rubric, question, theirs, mine), sample))
    replies = client.ask(calls)
    per_item: list[list[float]] = [[] for _ in result.predictions]
    flips = read_pairs = 0
    raw_verdicts: list[Any] = []
    length_diffs: list[Any] = []
    unread: list[Any] = []
    for i, _sample, first, second in plan:
        if first is None or second is None:
            per_item[i].append(0.0)  # the same output on both sides: a tie, nothing to ask
            continue
        v1, v2 = parse_pairwise(replies[first].text), parse_pairwise(replies[second].text)
        unread += [replies[j].text for j, v in ((first, v1), (second, v2)) if v is None]
        score, flipped = swap_verdict(v1, v2)
        per_item[i].append(score)
        if flipped is not None:
            read_pairs += 1
            flips += int(flipped)
        diff = _words(result.predictions[i]) - _words(others[i])
        for verdict, sign in ((v1, 1), (v2, -1)):
            if verdict is not None:
                raw_verdicts.append({"A": sign, "B": -sign, "tie": 0}[verdict])
                length_diffs.append(diff)
    _check_readable(judge, f"{result.suite}/{result.candidate}", unread, len(calls))
    figures = {
        "judgments": len(calls), "unparseable": len(unread),
        "unparseable_share": len(unread) / len(calls) if calls else 0.0,
        "unparseable_examples": [t[:200] for t in unread[:SHOWN_UNREAD]],
        "position_flip_rate": flips / read_pairs if read_pairs else None, "flip_pairs": read_pairs,
        "self_consistency": self_consistency(per_item), "length_bias": length_bias(raw_verdicts, length_diffs),
        "wins": sum(1 for row in per_item if mean(row) > 0), "ties": sum(1 for row in per_item if mean(row) == 0),
        "losses": sum(1 for row in per_item if mean(row) < 0),
    }
    return [mean(row) for row in per_item], {**figures, "replies": replies}


def judge_pointwise(client: JudgeClient, result: EvalResult) -> tuple[list[float], dict]:
    """Each output rated ``samples`` times (G-Eval's expected rating where logprobs came back)."""
    judge = client.judge
    calls = []
    for question, answer, reference in zip(result.inputs, result.predictions, result.references, strict=True):
        shown = reference if judge.reference else None
        for sample in range(judge.samples):
            calls.append((pointwise_messages(judge.rubric, question, answer, judge.scale, shown), sample))
    replies = client.ask(calls)
    per_item: list[list[float]] = [[] for _ in result.predictions]
    unread, weighted = [], 0
    for index, reply in enumerate(replies):
        rating = reply.expected if reply.expected is not None else parse_rating(reply.text, judge.scale)
        weighted += int(reply.expected is not None)
        if rating is None:
            unread.append(reply.text)
        else:
            per_item[index // judge.samples].append(rating)
    where = f"{result.suite}/{result.candidate}"
    _check_readable(judge, where, unread, len(calls))
    empty = [result.example_ids[i] for i, row in enumerate(per_item) if not row]
    if empty:
        raise JudgeError(f"judge {judge.name!r} on {where}: no readable rating for example(s) "
                         f"{', '.join(repr(e) for e in empty[:5])} (never scored 0; raise samples or fix the rubric)")
    scores = [mean(row) for row in per_item]
    lengths = [float(_words(p)) for p in result.predictions]

    figures = {
        "judgments": len(calls), "unparseable": len(unread),
        "unparseable_share": len(unread) / len(calls) if calls else 0.0,
        "unparseable_examples": [t[:200] for t in unread[:SHOWN_UNREAD]],
        "geval_weighted": weighted, "self_consistency": self_consistency(per_item),
        "length_bias": {"correlation": spearman(scores, lengths)},
    }
    return scores, {**figures, "replies": replies}


def apply_judges(ctx: BuildContext, suite: SuiteSpec, result: EvalResult,
                 evaluate_other: Callable[[str], EvalResult]) -> None:
    """Grade ``result`` with every judge of the suite: metric, per-example scores, signature, figures."""

    pricing = pricing_from_spec(ctx.spec.pricing)
    for judge in suite.judges:
        where = f"{ctx.spec.path}: suites.{suite.name}.judges.{judge.name}"
        client = JudgeClient(ctx, judge, where)
        signature = judge.signature(client.endpoint)
        if judge.mode == "pairwise":
            if judge.against == REFERENCE:
                others, against = list(result.references), "reference"
            else:
                other = result if judge.against == result.candidate else evaluate_other(str(judge.against))
                positions = {example_id: i for i, example_id in enumerate(other.example_ids)}
                missing = [e for e in result.example_ids if e not in positions]
                if missing:
                    raise JudgeError(f"judge {judge.name!r}: {judge.against!r} has no output for example(s) "
                                     f"{', '.join(repr(e) for e in missing[:5])}")
                others = [other.predictions[positions[e]] for e in result.example_ids]
                against = f"{other.candidate}:{other.fingerprint[:12]}"
                signature += f"@{other.fingerprint[:12]}"
            scores, figures = judge_pairwise(client, result, others)
        else:
            scores, figures = judge_pointwise(client, result)
            against = None
        replies = figures.pop("replies")
        result.metrics[judge.metric] = mean(scores)
        result.per_example[judge.metric] = scores
        result.signatures[judge.metric] = signature
        result.details.setdefault("judges", {})[judge.name] = {
            "metric": judge.metric, "mode": judge.mode, "model": judge.model, "endpoint": client.endpoint,
            "samples": judge.samples, "against": against, "min_agreement": judge.min_agreement,
            **figures, "usage": _usage(replies, judge, pricing),
        }
        if judge.min_agreement is not None:  # trusted only once people's labels agree (set by runner.human)
            result.details["judges"][judge.name]["agreement"] = {
                "n": 0, "kappa": None, "kappa_ci": None, "raw": None, "raw_ci": None,
                "min_agreement": judge.min_agreement, "untrusted": True}
