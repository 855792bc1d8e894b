"""LLM-as-judge (RLAIF): which of two answers to a prompt is better?

Every pair is judged with several judge prompts (consensus) and, by default, in both
orders (A, B) and (B, A): a judge that always prefers the first slot then scores the pair
a tie instead of a win, so position bias cancels out. Each single call's verdict is
parsed robustly ("A" / "B" / "tie", or nothing usable) and cached by the content hash
of (judge version, template, prompt, first answer, second answer): an in-process LRU
and, optionally, JSON objects in the object store so a re-run of an evaluation or a
dataset build costs no judge calls.

The judge runs on any :class:`~services.inference.backends.base.Backend` (the local
transformers backend, the vLLM OpenAI-compatible one, Triton), greedy by default.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from services.errors import NotFound
from services.inference.backends.base import AdapterRef, Backend, GenerationRequest
from services.objects.store import ObjectStore

Verdict = Literal["A", "B", "tie"]

PARSER_VERSION = "parse-v1"


@dataclass(frozen=True)
class RubricCriterion:
    """Mirrors ``rlaas.training.v1.RubricCriterion``."""

    name: str
    description: str = ""
    weight: float = 1.0


@dataclass(frozen=True)
class JudgeTemplate:
    """One judge prompt. ``user`` has ``{prompt}``, ``{first}``, ``{second}`` and
    ``{criteria}`` placeholders; the answer in the first slot is "A"."""

    template_id: str
    system: str
    user: str


_VERDICT_INSTRUCTION = (
    'Reply with exactly one of "A", "B" or "tie" on the last line, as: Verdict: <A|B|tie>'
)

DEFAULT_TEMPLATES: tuple[JudgeTemplate, ...] = (
    JudgeTemplate(
        "overall-v1",
        "You are an impartial judge of customer-facing replies. " + _VERDICT_INSTRUCTION,
        "Which reply answers the request better?{criteria}\n\n[Request]\n{prompt}\n\n"
        "[Reply A]\n{first}\n\n[Reply B]\n{second}\n\nVerdict:",
    ),
    JudgeTemplate(
        "helpful-harmless-v1",
        "You compare two assistant answers for helpfulness, harmlessness and faithfulness "
        "to the facts in the request. Ignore length and order. " + _VERDICT_INSTRUCTION,
        "Request:\n{prompt}\n\nAnswer A:\n{first}\n\nAnswer B:\n{second}\n{criteria}\n"
        "Which answer is better? Verdict:",
    ),
    JudgeTemplate(
        "editor-v1",
        "You are a senior support editor deciding which draft needs fewer edits before it "
        "can be sent to the customer. " + _VERDICT_INSTRUCTION,
        "Customer message:\n{prompt}\n\n--- Draft A ---\n{first}\n\n--- Draft B ---\n"
        "{second}\n{criteria}\nWhich draft would you send? Verdict:",
    ),
)


# ---- parsing ----------------------------------------------------------------------------

_TIE_WORDS = r"(?:tie|tied|draw|equal|equally|same|neither|both)"
_EXPLICIT = [
    # [[A]], [[B]], [[tie]] (MT-Bench style).
    re.compile(r"\[\[\s*(a|b|tie|c)\s*\]\]", re.I),
    # Verdict: A / Final answer: B / Winner - tie / Better: Answer A.
    re.compile(
        r"(?:verdict|final answer|final verdict|winner|answer|choice|decision|better|preferred)"
        r"\s*(?:is)?\s*[:=\-]\s*\**\s*(?:reply|answer|response|draft|assistant|option)?\s*"
        r"\(?\b(a|b|tie)\b\)?",
        re.I,
    ),
    # "Reply B is better", "answer A wins", "I prefer draft B".
    re.compile(
        r"(?:reply|answer|response|draft|assistant|option)\s*\(?\b(a|b)\b\)?\s*"
        r"(?:is|was)?\s*(?:clearly|slightly|much|far)?\s*(?:better|superior|preferred|wins)",
        re.I,
    ),
    re.compile(r"\bprefer\s+(?:reply|answer|response|draft|option)?\s*\(?\b(a|b)\b\)?", re.I),
]
_TIE_PHRASE = re.compile(
    rf"\b(?:it'?s a {_TIE_WORDS}|{_TIE_WORDS} (?:good|bad|well|strong|weak)|"
    r"no (?:clear )?(?:winner|difference)|tie)\b",
    re.I,
)
_BARE = re.compile(r"^\W*(a|b|tie|draw|equal)\W*$", re.I)
_LEADING = re.compile(r"^\W*(a|b)\b(?:[.):,\-]|\s*$|\s+(?:is|wins|better))", re.I)


def _norm(token: str) -> Verdict:
    token = token.lower()
    if token == "a":
        return "A"
    if token == "b":
        return "B"
    return "tie"


def parse_verdict(text: str) -> Verdict | None:
    """The verdict in a judge's reply, or ``None`` if it states none.

    Explicit markers win ("Verdict: B", "[[A]]", "Reply B is better"), the last one if
    the judge restated its decision; then a bare or leading "A"/"B"/"tie"; then tie
    phrases ("equally good", "no clear winner")."""
    text = text.strip()
    if not text:
        return None
    for pattern in _EXPLICIT:
        found = pattern.findall(text)
        if found:
            return _norm(found[-1])
    if m := _BARE.match(text):
        return _norm(m.group(1))
    if m := _LEADING.match(text):
        return _norm(m.group(1))
    if _TIE_PHRASE.search(text):
        return "tie"
    return None


# ---- cache ------------------------------------------------------------------------------


class JudgeCache:
    """Verdicts by content hash: an in-process LRU, backed by the object store if given
    (``judge-cache/[<namespace>/]<judge_version>/<hash>.json``). ``namespace`` keeps
    tenants apart: without it, a cache hit would tell one tenant that another judged the
    very same texts."""

    def __init__(
        self, maxsize: int = 10_000, store: ObjectStore | None = None, namespace: str = ""
    ) -> None:
        if "/" in namespace:
            raise ValueError(f"namespace must not contain '/': {namespace!r}")
        self.maxsize = maxsize
        self.store = store
        self.namespace = namespace
        self._lru: OrderedDict[str, str] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _object_key(self, key: str) -> str:
        version, _, digest = key.partition("/")
        prefix = f"judge-cache/{self.namespace}/" if self.namespace else "judge-cache/"
        return f"{prefix}{version}/{digest}.json"

    async def get(self, key: str) -> str | None:
        if key in self._lru:
            self._lru.move_to_end(key)
            self.hits += 1
            return self._lru[key]
        if self.store is not None:
            try:
                raw = await self.store.get(self._object_key(key))
            except NotFound:
                pass
            else:
                verdict = str(json.loads(raw)["verdict"])
                self._remember(key, verdict)
                self.hits += 1
                return verdict
        self.misses += 1
        return None

    async def put(self, key: str, verdict: str, raw_text: str) -> None:
        self._remember(key, verdict)
        if self.store is not None:
            body = json.dumps({"verdict": verdict, "raw": raw_text}, sort_keys=True)
            await self.store.put(self._object_key(key), body.encode())

    def _remember(self, key: str, verdict: str) -> None:
        self._lru[key] = verdict
        self._lru.move_to_end(key)
        while len(self._lru) > self.maxsize:
            self._lru.popitem(last=False)

    def __len__(self) -> int:
        return len(self._lru)


# ---- the judge --------------------------------------------------------------------------

_INVALID = "invalid"


@dataclass(frozen=True)
class Vote:
    template_id: str
    order: Literal["AB", "BA"]
    verdict: Verdict | None
    """As the judge said it, in the order it was shown."""
    b_score: float | None
    """In the caller's frame: 1 = B better, 0 = A better, 0.5 = tie, None = no verdict."""


@dataclass(frozen=True)
class Judgement:
    p_b_wins: float
    """Probability that B is better: mean of the valid votes' B-scores (0.5 with none)."""
    votes: tuple[Vote, ...]
    valid_votes: int
    invalid_votes: int
    order_consistency: float | None
    """Share of templates whose two orders agree (None: no template with both valid)."""
    agreement: float | None
    """Share of valid votes equal to the majority outcome (None: no valid vote)."""
    judge_version: str

    @property
    def verdict(self) -> int:
        """+1 B better, -1 A better, 0 tie or undecided."""
        if self.valid_votes == 0 or abs(self.p_b_wins - 0.5) < 1e-9:
            return 0
        return 1 if self.p_b_wins > 0.5 else -1


def _as_verdict(said: str) -> Verdict | None:
    if said == "A":
        return "A"
    if said == "B":
        return "B"
    if said == "tie":
        return "tie"
    return None


def templates_for_votes(votes: int) -> tuple[JudgeTemplate, ...]:
    """The first ``votes`` default templates (``JudgeConfig.votes``; 0 means 1)."""
    if votes > len(DEFAULT_TEMPLATES):
        raise ValueError(f"votes must be at most {len(DEFAULT_TEMPLATES)}, got {votes}")
    return DEFAULT_TEMPLATES[: max(votes, 1)]


def _b_score(verdict: Verdict | None, order: str) -> float | None:
    if verdict is None:
        return None
    if verdict == "tie":
        return 0.5
    first_won = verdict == "A"
    # In order AB the first slot is A; in BA it is B.
    b_won = (not first_won) if order == "AB" else first_won
    return 1.0 if b_won else 0.0


def aggregate_votes(votes: Sequence[Vote], judge_version: str) -> Judgement:
    """Consensus of several (template, order) votes."""
    valid = [v.b_score for v in votes if v.b_score is not None]
    p_b = sum(valid) / len(valid) if valid else 0.5
    consistent, both = 0, 0
    for template_id in dict.fromkeys(v.template_id for v in votes):
        pair = [v.b_score for v in votes if v.template_id == template_id and v.b_score is not None]
        if len(pair) == 2:
            both += 1
            consistent += pair[0] == pair[1]
    agreement: float | None = None
    if valid:
        counts = {s: valid.count(s) for s in set(valid)}
        agreement = max(counts.values()) / len(valid)
    return Judgement(
        p_b_wins=p_b,
        votes=tuple(votes),
        valid_votes=len(valid),
        invalid_votes=len(votes) - len(valid),
        order_consistency=consistent / both if both else None,
        agreement=agreement,
        judge_version=judge_version,
    )


def _criteria_text(rubric: Sequence[RubricCriterion]) -> str:
    if not rubric:
        return ""
    lines = [
        f"- {c.name} (weight {c.weight:g})" + (f": {c.description}" if c.description else "")
        for c in rubric
    ]
    return "\nJudge by these criteria:\n" + "\n".join(lines)


@dataclass
class PairwiseJudge:
    backend: Backend
    templates: Sequence[JudgeTemplate] = DEFAULT_TEMPLATES
    rubric: Sequence[RubricCriterion] = ()
    swap_positions: bool = True
    model_label: str = ""
    """What the backend serves (model name / policy), part of ``judge_version``."""
    adapter: AdapterRef | None = None
    max_new_tokens: int = 24
    timeout_s: float = 60.0
    cache: JudgeCache = field(default_factory=JudgeCache)
    concurrency: int = 4

    def __post_init__(self) -> None:
        if not self.templates:
            raise ValueError("a judge needs at least one template")
        if len({t.template_id for t in self.templates}) != len(self.templates):
            raise ValueError("template ids must be unique")
        self._semaphore = asyncio.Semaphore(self.concurrency)

    @property
    def judge_version(self) -> str:
        """``judge-<sha256[:16]>`` of everything that shapes a verdict: templates,
        rubric, order handling, model, adapter, decoding and the parser."""
        spec = {
            "templates": [[t.template_id, t.system, t.user] for t in self.templates],
            "rubric": [[c.name, c.description, c.weight] for c in self.rubric],
            "swap": self.swap_positions,
            "backend": getattr(self.backend, "name", type(self.backend).__name__),
            "model": self.model_label,
            "adapter": [self.adapter.name, self.adapter.sha256] if self.adapter else None,
            "max_new_tokens": self.max_new_tokens,
            "parser": PARSER_VERSION,
        }
        raw = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
        return "judge-" + hashlib.sha256(raw).hexdigest()[:16]

    def _key(self, template: JudgeTemplate, prompt: str, first: str, second: str) -> str:
        raw = json.dumps([template.template_id, prompt, first, second]).encode()
        return f"{self.judge_version}/{hashlib.sha256(raw).hexdigest()}"

    async def _ask(self, template: JudgeTemplate, prompt: str, first: str, second: str) -> str:
        key = self._key(template, prompt, first, second)
        cached = await self.cache.get(key)
        if cached is not None:
            return cached
        request = GenerationRequest(
            messages=[
                {"role": "system", "content": template.system},
                {
                    "role": "user",
                    "content": template.user.format(
                        prompt=prompt,
                        first=first,
                        second=second,
                        criteria=_criteria_text(self.rubric),
                    ),
                },
            ],
            adapter=self.adapter,
            max_new_tokens=self.max_new_tokens,
            temperature=0.0,
        )
        async with self._semaphore:
            result = await self.backend.generate(request, timeout_s=self.timeout_s)
        verdict = parse_verdict(result.text) or _INVALID
        await self.cache.put(key, verdict, result.text)
        return verdict

    async def judge(self, prompt: str, answer_a: str, answer_b: str) -> Judgement:
        """Judge one pair: the probability that ``answer_b`` is better, with agreement
        statistics. Backend errors (``Unavailable`` ...) propagate and are not cached."""
        jobs: list[tuple[JudgeTemplate, Literal["AB", "BA"]]] = []
        for template in self.templates:
            jobs.append((template, "AB"))
            if self.swap_positions:
                jobs.append((template, "BA"))
        raw = await asyncio.gather(
            *(
                self._ask(t, prompt, answer_a, answer_b)
                if order == "AB"
                else self._ask(t, prompt, answer_b, answer_a)
                for t, order in jobs
            )
        )
        votes = []
        for (template, order), said in zip(jobs, raw, strict=True):
            verdict = _as_verdict(said)
            votes.append(Vote(template.template_id, order, verdict, _b_score(verdict, order)))
        return aggregate_votes(votes, self.judge_version)

    async def judge_many(self, items: Sequence[tuple[str, str, str]]) -> list[Judgement]:
        """Judge several ``(prompt, answer_a, answer_b)`` pairs, concurrently."""
        return list(await asyncio.gather(*(self.judge(p, a, b) for p, a, b in items)))
