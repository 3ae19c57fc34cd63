"""Seeded generator of the fixture datasets the example suites train and evaluate on.

``python -m harness.data.synthetic [--out fixtures] [--seed 0]`` writes, deterministically
and byte for byte the same on every run, a two-label sentiment task, a data-to-text
generation task (OpenAI chat JSONL, ``{"messages": [...]}`` per line), an unlabelled corpus
for the tokenizer and the base model's warm-up, and a README describing them.

Validation and eval are built so they are not copies of train: some sentence frames and
some product names occur only there, every eval / validation review uses a held-out frame,
and no eval or validation text appears in train or in the corpus (checked on every run).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import DatasetError, HarnessError

SPLITS = ("train", "validation", "eval")
SENTIMENT_SIZES = {"train": 320, "validation": 64, "eval": 200}
GENERATION_SIZES = {"train": 320, "validation": 64, "eval": 120}
SENTIMENT_SYSTEM = "Classify the sentiment of the review. Answer positive or negative."
GENERATION_SYSTEM = "Write a one-sentence product description from the fields."
POSITIVE = "positive"
NEGATIVE = "negative"
LABELS = (POSITIVE, NEGATIVE)
MAX_REVIEW_WORDS = 40
MAX_DESCRIPTION_WORDS = 20
#: How often the fixed instructions and the label words are repeated in the corpus.
CORPUS_INSTRUCTION_REPEATS = 20
CORPUS_REVIEW_SENTENCES = 1800
CORPUS_DESCRIPTIONS = 900
_MAX_ATTEMPTS = 200_000

# ---------------------------------------------------------------------------------------------
# Sentiment vocabulary. Every review is built from frames (sentence templates); frames marked
# held_out are used only for validation and eval, the vocabulary is shared by all splits.


@dataclass(frozen=True)
class Frame:
    """A sentence template; ``held_out`` frames never appear in train or the corpus."""

    text: str
    held_out: bool = False


@dataclass(frozen=True)
class ClosingFrame:
    """A closing verdict sentence in a positive and a negative form."""

    positive: str
    negative: str
    held_out: bool = False


@dataclass(frozen=True)
class Domain:
    """A review domain: what is reviewed, its aspects by kind, and the 'again' verb phrase."""

    subjects: tuple[str, ...]
    aspects: dict[str, tuple[str, ...]]
    again: str


DOMAINS: dict[str, Domain] = {
    "product": Domain(
        subjects=("this blender", "the kettle", "this vacuum", "the keyboard", "this phone",
                  "the toaster", "this speaker"),
        aspects={
            "build": ("build quality", "finish", "handle", "casing", "lid"),
            "function": ("battery life", "sound", "performance", "screen", "motor"),
            "service": ("delivery", "customer support", "packaging", "manual"),
        },
        again="buy it",
    ),
    "film": Domain(
        subjects=("this film", "the movie", "this sequel", "the documentary", "this thriller",
                  "the comedy"),
        aspects={
            "story": ("plot", "script", "ending", "dialogue", "story"),
            "cast": ("acting", "cast", "lead performance", "villain"),
            "craft": ("soundtrack", "cinematography", "pacing", "editing", "camera work"),
        },
        again="watch it",
    ),
    "restaurant": Domain(
        subjects=("this restaurant", "the cafe", "this bistro", "the diner", "this pizzeria"),
        aspects={
            "food": ("food", "pasta", "soup", "dessert", "coffee", "steak"),
            "staff": ("staff", "service", "waiter", "host"),
            "place": ("atmosphere", "decor", "music", "terrace"),
        },
        again="eat here",
    ),
}

#: (positive adjectives, negative adjectives) by aspect kind; "general" fits every aspect.
ADJECTIVES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "general": (("great", "excellent", "wonderful", "superb", "fantastic", "lovely", "brilliant",
                 "pleasant", "outstanding", "good"),
                ("terrible", "awful", "poor", "disappointing", "dreadful", "mediocre", "horrible",
                 "lousy", "bad", "forgettable")),
    "build": (("sturdy", "solid", "elegant"), ("flimsy", "fragile", "cheap")),
    "function": (("reliable", "powerful", "impressive"), ("unreliable", "weak", "faulty")),
    "service": (("quick", "helpful", "clear"), ("slow", "unhelpful", "confusing")),
    "story": (("gripping", "clever", "moving"), ("predictable", "boring", "confusing")),
    "cast": (("convincing", "charming", "believable"), ("wooden", "unconvincing", "flat")),
    "craft": (("stunning", "beautiful", "polished"), ("clumsy", "sluggish", "messy")),
    "food": (("delicious", "fresh", "tasty"), ("bland", "cold", "greasy", "stale")),
    "staff": (("friendly", "attentive", "welcoming"), ("rude", "slow", "careless")),
    "place": (("cosy", "charming", "relaxing"), ("noisy", "gloomy", "cramped")),
}
INTENSIFIERS = ("very", "really", "truly", "incredibly", "extremely", "quite", "remarkably", "so")
#: Negating a positive adjective gives a negative phrase ("not great") and vice versa
#: ("not bad at all"); "far from" and "anything but" occur on both sides.
NEGATED_POSITIVE = ("not {adj}", "not very {adj}", "far from {adj}", "not exactly {adj}",
                    "anything but {adj}", "not particularly {adj}")
NEGATED_NEGATIVE = ("not {adj} at all", "not at all {adj}", "far from {adj}",
                    "anything but {adj}")

STATEMENT_FRAMES = (
    Frame("The {aspect} was {adj}."),
    Frame("The {aspect} is {adj}."),
    Frame("{subject} was {adj} overall."),
    Frame("Honestly, the {aspect} was {adj}."),
    Frame("I thought the {aspect} was {adj}."),
    Frame("The {aspect} felt {adj}."),
    Frame("In my opinion the {aspect} is {adj}."),
    Frame("We found the {aspect} {adj}."),
    Frame("The {aspect} of {subject} was {adj}."),
    Frame("To be fair, the {aspect} was {adj}."),
    Frame("I found the {aspect} {adj}.", held_out=True),
    Frame("The {aspect} turned out to be {adj}.", held_out=True),
    Frame("As for the {aspect}, it was {adj}.", held_out=True),
    Frame("The {aspect} seemed {adj} to me.", held_out=True),
    Frame("Everyone agreed the {aspect} was {adj}.", held_out=True),
)
#: A contrast sentence: the ``{label}`` clause carries the review's sentiment, the
#: ``{opposing}`` clause the other one ("the food was cold but the staff made up for it").
CONTRAST_FRAMES = (
    Frame("{opposing} but {label}."),
    Frame("Although {opposing}, {label}."),
    Frame("{opposing}, however {label}."),
    Frame("{label} despite the fact that {opposing}."),
    Frame("{opposing}; still, {label}."),
    Frame("{label}, even though {opposing}.", held_out=True),
    Frame("While {opposing}, {label}.", held_out=True),
    Frame("Sure, {opposing}, yet {label}.", held_out=True),
)
CLAUSE_FRAMES = ("the {aspect} was {adj}", "the {aspect} felt {adj}", "the {aspect} is {adj}")
#: Clauses that only make sense after the clause they answer ("... but the staff made up for it").
REDEEMING_CLAUSES = {
    POSITIVE: ("the {aspect} made up for it", "the {aspect} saved it"),
    NEGATIVE: ("the {aspect} ruined it", "the {aspect} let it down"),
}
CLOSING_FRAMES = (
    ClosingFrame("I would recommend it to anyone.", "I would not recommend it to anyone."),
    ClosingFrame("I would {again} again.", "I would not {again} again."),
    ClosingFrame("Worth every penny.", "Not worth the money."),
    ClosingFrame("Highly recommended.", "Best avoided."),
    ClosingFrame("Overall, a pleasure.", "Overall, a letdown."),
    ClosingFrame("Definitely a keeper.", "Definitely a mistake."),
    ClosingFrame("Five stars from me.", "One star from me.", held_out=True),
    ClosingFrame("I left with a smile.", "I left feeling cheated.", held_out=True),
    ClosingFrame("You will not regret it.", "You will regret it.", held_out=True),
)

# How a review's main sentence carries its label, how many sentences a review has, and how
# often each device is used: together they set how hard the task is.
MAIN_KINDS = (("plain", 0.4), ("negated", 0.3), ("contrast", 0.3))
SENTENCE_COUNTS = ((1, 0.4), (2, 0.35), (3, 0.25))
P_KIND_ADJECTIVE = 0.6  # an aspect-specific adjective ("bland") rather than a general one
P_INTENSIFIER = 0.45  # on a plain adjective
P_NEGATED_CLAUSE = 0.15  # a contrast clause is itself negated
P_REDEEMING = 0.35  # "... but the staff made up for it"
P_CLOSING = 0.5  # a review of 2-3 sentences ends with a verdict
P_NEGATED_SUPPORT = 0.4  # a supporting sentence is negated

# ---------------------------------------------------------------------------------------------
# Generation vocabulary: the target template is chosen by the product type's category.

PRODUCT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "lighting": ("lamp", "lantern", "torch"),
    "furniture": ("chair", "table", "shelf", "stool"),
    "kitchen": ("kettle", "mug", "teapot", "bowl"),
    "bags": ("backpack", "wallet", "suitcase", "tote"),
    "audio": ("speaker", "radio", "turntable"),
}
#: (template without material, template with material) per category.
DESCRIPTION_TEMPLATES: dict[str, tuple[str, str]] = {
    "lighting": ("The {name} is {a_colour} {type} that costs {price} dollars.",
                 "The {name} is {a_colour} {material} {type} that costs {price} dollars."),
    "furniture": ("{name} is {a_colour} {type} priced at {price} dollars.",
                  "{name} is {a_colour} {type} made of {material}, priced at {price} dollars."),
    "kitchen": ("Meet the {name}, {a_colour} {type} for just {price} dollars.",
                "Meet the {name}, {a_colour} {material} {type} for just {price} dollars."),
    "bags": ("For {price} dollars, the {name} {type} comes in {colour}.",
             "For {price} dollars, the {name} {type} comes in {colour} {material}."),
    "audio": ("The {colour} {name} {type} sells for {price} dollars.",
              "The {colour} {name} {type} is made of {material} and sells for {price} dollars."),
}
COLOURS = ("green", "red", "blue", "black", "white", "grey", "yellow", "orange", "purple",
           "silver", "brown", "pink", "teal", "ivory", "navy", "olive", "amber", "crimson")
MATERIALS = ("oak", "steel", "glass", "bamboo", "ceramic", "leather", "canvas", "plastic",
             "walnut", "aluminium", "copper", "wool")
PRODUCT_NAMES = (
    "Aurora", "Nimbus", "Ember", "Cedar", "Orbit", "Willow", "Atlas", "Pebble", "Zephyr",
    "Juniper", "Comet", "Harbor", "Maple", "Solstice", "Tundra", "Lumen", "Breeze", "Quartz",
    "Sierra", "Nova", "Drift", "Falcon", "Meadow", "Onyx", "Ripple", "Summit", "Vega", "Aspen",
    "Coral", "Dune", "Echo", "Fable", "Glacier", "Haven", "Jasper", "Kestrel", "Lotus",
    "Mistral", "Nectar", "Opal", "Prism", "Quill", "Raven", "Sable", "Thistle", "Velvet",
    "Wren", "Yarrow",
)
#: Names that never occur in train or the corpus (validation / eval only).
HELD_OUT_NAMES = ("Zenith", "Birch", "Everest", "Fern", "Galaxy", "Hazel", "Iris", "Kite",
                  "Mosaic", "Pixel", "Rune", "Talon")
#: Fraction of validation / eval records whose product name is a held-out name.
HELD_OUT_NAME_FRACTION = 0.5
PRICE_RANGE = (5, 249)
MATERIAL_PROBABILITY = 0.5


def _weighted(rng: random.Random, options: Sequence[tuple[Any, float]]) -> Any:
    values = [value for value, _ in options]
    weights = [weight for _, weight in options]
    return rng.choices(values, weights=weights)[0]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _balanced_labels(rng: random.Random, size: int) -> list[str]:
    labels = [POSITIVE] * (size // 2) + [NEGATIVE] * (size - size // 2)
    rng.shuffle(labels)
    return labels


def _chat(system: str, user: str, assistant: str) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": system},
                         {"role": "user", "content": user},
                         {"role": "assistant", "content": assistant}]}


def _draw_unique(draw: Callable[[], Any], key: Callable[[Any], str], taken: set[str],
                 what: str) -> Any:
    """Call ``draw`` until it returns an item whose ``key`` is not yet in ``taken``."""
    for _ in range(_MAX_ATTEMPTS):
        item = draw()
        if key(item) not in taken:
            taken.add(key(item))
            return item
    raise HarnessError(f"could not draw a new {what} in {_MAX_ATTEMPTS} attempts; "
                       "the vocabulary is too small for the requested size")


# ---------------------------------------------------------------------------------------------
# Sentiment reviews.


@dataclass(frozen=True)
class Review:
    """A generated review: its sentences and its label."""

    sentences: tuple[str, ...]
    label: str

    @property
    def text(self) -> str:
        """The review as the user message: its sentences joined by spaces."""
        return " ".join(self.sentences)


class _ReviewWriter:
    """Draws reviews from one ``random.Random``; ``held_out`` picks the frame pool."""

    def __init__(self, rng: random.Random, *, held_out: bool) -> None:
        self.rng = rng
        self.held_out = held_out
        self.statements = [f for f in STATEMENT_FRAMES if held_out or not f.held_out]
        self.contrasts = [f for f in CONTRAST_FRAMES if held_out or not f.held_out]
        self.closings = [f for f in CLOSING_FRAMES if held_out or not f.held_out]

    def _adjective(self, kind: str, polarity: str) -> str:
        specific = kind != "general" and self.rng.random() < P_KIND_ADJECTIVE
        use_kind = kind if specific else "general"
        positive, negative = ADJECTIVES[use_kind]
        return self.rng.choice(positive if polarity == POSITIVE else negative)

    def _adjective_phrase(self, kind: str, polarity: str, negated: bool) -> str:
        """An adjective phrase whose overall sentiment is ``polarity``."""
        if negated:
            base_polarity = NEGATIVE if polarity == POSITIVE else POSITIVE
            pattern = self.rng.choice(
                NEGATED_POSITIVE if base_polarity == POSITIVE else NEGATED_NEGATIVE)
            return pattern.format(adj=self._adjective(kind, base_polarity))
        adjective = self._adjective(kind, polarity)
        if self.rng.random() < P_INTENSIFIER:
            return f"{self.rng.choice(INTENSIFIERS)} {adjective}"
        return adjective

    def _aspect(self, domain: Domain, avoid: set[str]) -> tuple[str, str]:
        choices = [(kind, aspect) for kind, aspects in domain.aspects.items()
                   for aspect in aspects if aspect not in avoid]
        return self.rng.choice(choices)

    def _statement(self, domain: Domain, subject: str, polarity: str, negated: bool,
                   frame: Frame, used: set[str]) -> str:
        if frame.text.startswith("{subject}"):
            kind, aspect = "general", ""
        else:
            kind, aspect = self._aspect(domain, used)
            used.add(aspect)
        adjective = self._adjective_phrase(kind, polarity, negated)
        return _capitalise(frame.text.format(aspect=aspect, adj=adjective, subject=subject))

    def _contrast(self, domain: Domain, polarity: str, frame: Frame, used: set[str]) -> str:
        opposite = NEGATIVE if polarity == POSITIVE else POSITIVE
        kind, aspect = self._aspect(domain, used)
        used.add(aspect)
        clause = self.rng.choice(CLAUSE_FRAMES)
        negated = self.rng.random() < P_NEGATED_CLAUSE
        opposing = clause.format(aspect=aspect, adj=self._adjective_phrase(kind, opposite, negated))
        kind, aspect = self._aspect(domain, used)
        used.add(aspect)
        label_after_opposing = frame.text.index("{label}") > frame.text.index("{opposing}")
        if label_after_opposing and self.rng.random() < P_REDEEMING:
            label_clause = self.rng.choice(REDEEMING_CLAUSES[polarity]).format(aspect=aspect)
        else:
            clause = self.rng.choice(CLAUSE_FRAMES)
            negated = self.rng.random() < P_NEGATED_CLAUSE
            label_clause = clause.format(
                aspect=aspect, adj=self._adjective_phrase(kind, polarity, negated))
        return _capitalise(frame.text.format(opposing=opposing, label=label_clause))

    def review(self, label: str, *, require_held_out: bool) -> Review:
        """One review with sentiment ``label``; its main sentence is held-out if required."""
        domain = DOMAINS[self.rng.choice(sorted(DOMAINS))]
        subject = self.rng.choice(domain.subjects)
        kind = _weighted(self.rng, MAIN_KINDS)
        count = _weighted(self.rng, SENTENCE_COUNTS)
        used: set[str] = set()
        pool = self.contrasts if kind == "contrast" else self.statements
        if require_held_out:
            pool = [f for f in pool if f.held_out]
        frame = self.rng.choice(pool)
        if kind == "contrast":
            sentences = [self._contrast(domain, label, frame, used)]
        else:
            sentences = [self._statement(domain, subject, label, kind == "negated", frame, used)]
        closing = None
        if count > 1 and self.rng.random() < P_CLOSING:
            closing_frame = self.rng.choice(self.closings)
            template = closing_frame.positive if label == POSITIVE else closing_frame.negative
            closing = template.format(again=domain.again)
        while len(sentences) < count - (closing is not None):
            support = self.rng.choice(self.statements)
            negated = self.rng.random() < P_NEGATED_SUPPORT
            sentences.append(self._statement(domain, subject, label, negated, support, used))
        self.rng.shuffle(sentences)
        if closing is not None:
            sentences.append(closing)
        return Review(tuple(sentences), label)


def _draw_review(writer: _ReviewWriter, label: str, *, require_held_out: bool) -> Review:
    for _ in range(_MAX_ATTEMPTS):
        review = writer.review(label, require_held_out=require_held_out)
        if len(review.text.split()) <= MAX_REVIEW_WORDS:
            return review
    raise HarnessError(f"could not draw a review of at most {MAX_REVIEW_WORDS} words")


def sentiment_reviews(seed: int = 0) -> dict[str, list[Review]]:
    """The sentiment splits as :class:`Review` objects (unique texts, balanced labels)."""
    rng = random.Random(f"sentiment:{seed}")
    taken: set[str] = set()
    splits: dict[str, list[Review]] = {}
    for split in SPLITS:
        held_out = split != "train"
        writer = _ReviewWriter(rng, held_out=held_out)
        reviews = []
        for label in _balanced_labels(rng, SENTIMENT_SIZES[split]):
            def draw(label: str = label) -> Review:
                return _draw_review(writer, label, require_held_out=held_out)  # noqa: B023

            reviews.append(_draw_unique(draw, lambda review: review.text, taken, "review"))
        splits[split] = reviews
    return splits


def sentiment_splits(seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """The sentiment task as chat records per split: system instruction, review, label."""
    return {split: [_chat(SENTIMENT_SYSTEM, review.text, review.label) for review in reviews]
            for split, reviews in sentiment_reviews(seed).items()}


# ---------------------------------------------------------------------------------------------
# Data-to-text product descriptions.


@dataclass(frozen=True)
class Product:
    """The fields of one product; ``material`` is optional ("" when absent)."""

    name: str
    type: str
    colour: str
    price: int
    material: str = ""

    @property
    def category(self) -> str:
        """The category of the product type; it picks the description template."""
        return next(c for c, types in PRODUCT_CATEGORIES.items() if self.type in types)


def _with_article(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def describe(product: Product) -> str:
    """The reference description: the template of the product's category, filled in."""
    plain, with_material = DESCRIPTION_TEMPLATES[product.category]
    template = with_material if product.material else plain
    return template.format(name=product.name, type=product.type, colour=product.colour,
                           a_colour=_with_article(product.colour), price=product.price,
                           material=product.material)


def _field_prompt(rng: random.Random, product: Product) -> str:
    fields = [("name", product.name), ("type", product.type), ("colour", product.colour),
              ("price", str(product.price))]
    if product.material:
        fields.append(("material", product.material))
    rng.shuffle(fields)
    return " | ".join(f"{key}: {value}" for key, value in fields)


def _draw_product(rng: random.Random, names: Sequence[str]) -> Product:
    category = rng.choice(sorted(PRODUCT_CATEGORIES))
    material = rng.choice(MATERIALS) if rng.random() < MATERIAL_PROBABILITY else ""
    return Product(name=rng.choice(names), type=rng.choice(PRODUCT_CATEGORIES[category]),
                   colour=rng.choice(COLOURS), price=rng.randint(*PRICE_RANGE),
                   material=material)


def generation_products(seed: int = 0) -> dict[str, list[tuple[str, Product]]]:
    """(prompt, product) pairs per split; eval / validation use unseen (name, type) pairs."""
    rng = random.Random(f"generation:{seed}")
    taken: set[str] = set()
    train_pairs: set[tuple[str, str]] = set()
    splits: dict[str, list[tuple[str, Product]]] = {}
    for split in SPLITS:
        size = GENERATION_SIZES[split]
        records: list[tuple[str, Product]] = []
        for index in range(size):
            if split == "train":
                names: Sequence[str] = PRODUCT_NAMES
            elif index < round(size * HELD_OUT_NAME_FRACTION):
                names = HELD_OUT_NAMES
            else:
                names = PRODUCT_NAMES

            def draw(names: Sequence[str] = names) -> Product:
                for _ in range(_MAX_ATTEMPTS):
                    product = _draw_product(rng, names)
                    if (product.name, product.type) not in train_pairs:  # noqa: B023
                        return product
                raise HarnessError("could not draw a product with an unseen (name, type) pair")

            chosen = _draw_unique(draw, describe, taken, "product description")
            records.append((_field_prompt(rng, chosen), chosen))
        rng.shuffle(records)
        if split == "train":
            train_pairs = {(p.name, p.type) for _, p in records}
        splits[split] = records
    return splits


def generation_splits(seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """The data-to-text task as chat records per split: instruction, fields, reference."""
    return {split: [_chat(GENERATION_SYSTEM, prompt, describe(product))
                    for prompt, product in records]
            for split, records in generation_products(seed).items()}


# ---------------------------------------------------------------------------------------------
# Unlabelled corpus.


def corpus_lines(seed: int, forbidden: set[str]) -> list[str]:
    """Unlabelled lines (review sentences, descriptions, field lists, instructions, labels).

    Built only from train-side frames and names; no line is in ``forbidden``.
    """
    rng = random.Random(f"corpus:{seed}")
    writer = _ReviewWriter(rng, held_out=False)
    lines: list[str] = []
    review_sentences = 0
    while review_sentences < CORPUS_REVIEW_SENTENCES:
        review = _draw_review(writer, rng.choice(LABELS), require_held_out=False)
        if review.text in forbidden:
            continue
        fresh = [s for s in review.sentences if s not in forbidden]
        lines.extend(fresh)
        review_sentences += len(fresh)
    descriptions = 0
    while descriptions < CORPUS_DESCRIPTIONS:
        product = _draw_product(rng, PRODUCT_NAMES)
        description, prompt = describe(product), _field_prompt(rng, product)
        if description in forbidden or prompt in forbidden:
            continue
        lines.append(description)
        descriptions += 1
        if descriptions % 3 == 0:
            lines.append(prompt)
    for _ in range(CORPUS_INSTRUCTION_REPEATS):
        lines.extend([SENTIMENT_SYSTEM, GENERATION_SYSTEM, *LABELS])
    rng.shuffle(lines)
    return lines


# ---------------------------------------------------------------------------------------------
# Checks, rendering and writing.


def user_texts(records: list[dict[str, Any]]) -> list[str]:
    """The user message of each chat record (the review / the field list)."""
    return [next(m["content"] for m in r["messages"] if m["role"] == "user") for r in records]


def _check_held_out(task: str, splits: dict[str, list[dict[str, Any]]], corpus: set[str]) -> None:
    """Raise if any validation / eval input (or reference) occurs in train or the corpus."""
    train = set(user_texts(splits["train"]))
    for split in ("validation", "eval"):
        for number, record in enumerate(splits[split], start=1):
            user = user_texts([record])[0]
            reference = record["messages"][-1]["content"]
            where = f"fixtures/{task}/{split}.jsonl"
            if user in train:
                raise DatasetError("held-out text also occurs in train", path=where,
                                   line=number, field="messages[1].content")
            if user in corpus or (task == "generation" and reference in corpus):
                raise DatasetError("held-out text also occurs in corpus.txt", path=where,
                                   line=number, field="messages")


def to_jsonl(records: list[dict[str, Any]]) -> str:
    """One compact JSON object per line, UTF-8 kept as is, trailing newline."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def _label_counts(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["messages"][-1]["content"] for r in records)


def _held_out_list(frames: Sequence[Frame] | Sequence[ClosingFrame]) -> str:
    items = [f.text if isinstance(f, Frame) else f"{f.positive} / {f.negative}"
             for f in frames if f.held_out]
    return "\n".join(f"    - `{item}`" for item in items)


def _readme(seed: int, sentiment: dict[str, list[dict[str, Any]]],
            generation: dict[str, list[dict[str, Any]]], corpus: list[str]) -> str:
    """The fixtures README: what each file is, how it was made, sizes, held-out design."""
    label_rows = "\n".join(
        f"| {split} | {len(sentiment[split])} | {_label_counts(sentiment[split])[POSITIVE]} | "
        f"{_label_counts(sentiment[split])[NEGATIVE]} |" for split in SPLITS)
    generation_rows = "\n".join(f"| {split} | {len(generation[split])} |" for split in SPLITS)
    categories = "\n".join(f"- {category}: {', '.join(types)}"
                           for category, types in PRODUCT_CATEGORIES.items())
    frame_groups = (STATEMENT_FRAMES, CONTRAST_FRAMES, CLOSING_FRAMES)
    held = [sum(f.held_out for f in group) for group in frame_groups]
    return f"""# Fixture datasets

Generated by `python -m harness.data.synthetic --out fixtures --seed {seed}`
(`harness/data/synthetic.py`). Do not edit these files by hand: change the generator and
regenerate; `tests/test_synthetic.py` checks that the committed files equal its output.
`candidates.toml` in this folder is not generated.

The datasets are OpenAI chat JSON Lines: one `{{"messages": [...]}}` object per line with a
system, a user and a final assistant message and nothing else (a record is identified by
its line number), so they pass OpenAI's fine-tuning format check unchanged.

## sentiment/{{train,validation,eval}}.jsonl

Two-label sentiment of short product, film and restaurant reviews, 1 to 3 sentences of at
most {MAX_REVIEW_WORDS} words in all.

- system: `{SENTIMENT_SYSTEM}`
- user: the review
- assistant: exactly `{POSITIVE}` or `{NEGATIVE}`

Reviews mix plain statements with intensifiers ("truly superb"), negation ("not great" is
negative, "not bad at all" positive), contrast (the clause that answers the other one
decides: "the food was cold but the staff made up for it" is positive) and closing
verdicts ("I would not buy it again.").

| split | records | positive | negative |
|---|---|---|---|
{label_rows}

## generation/{{train,validation,eval}}.jsonl

Data to text, with references for BLEU / ROUGE.

- system: `{GENERATION_SYSTEM}`
- user: the fields in a random order, e.g. `name: Aurora | type: lamp | colour: green | price: 35`,
  {MATERIAL_PROBABILITY:.0%} of the time with a `material` field too
- assistant: one sentence of at most {MAX_DESCRIPTION_WORDS} words

The target template is fixed by the category of the product type, one template with and
one without the material ({len(DESCRIPTION_TEMPLATES) * 2} templates in all):

{categories}

| split | records |
|---|---|
{generation_rows}

## corpus.txt

{len(corpus)} unlabelled lines, one per line: review sentences, product descriptions, some
field lists, and the two instructions and the two label words ({CORPUS_INSTRUCTION_REPEATS}
times each). It trains the tokenizer of the embedded base model and its short
language-model warm-up, so the base writes words rather than noise.

## Held-out design

Validation and eval are not copies of train. The vocabulary (domains, aspects, adjectives,
intensifiers, negations, colours, materials, types) is shared, so a small model can
generalise to them.

- Sentiment: {sum(held)} sentence templates occur only in validation and eval; neither train
  nor the corpus contains them. The main sentence of every validation and eval review uses
  a held-out statement or contrast frame; its other sentences may use any template.
  - {held[0]} of {len(STATEMENT_FRAMES)} statement frames:
{_held_out_list(STATEMENT_FRAMES)}
  - {held[1]} of {len(CONTRAST_FRAMES)} contrast frames:
{_held_out_list(CONTRAST_FRAMES)}
  - {held[2]} of {len(CLOSING_FRAMES)} closing verdicts:
{_held_out_list(CLOSING_FRAMES)}
- Generation: {len(HELD_OUT_NAMES)} product names ({", ".join(HELD_OUT_NAMES)}) occur only in
  validation and eval ({HELD_OUT_NAME_FRACTION:.0%} of their records), and no validation or
  eval record repeats a (name, type) pair of train.
- No validation or eval review, field list or reference occurs in train or as a line of
  `corpus.txt`; the generator checks this every time it runs.
"""


def render_fixtures(seed: int = 0) -> dict[str, str]:
    """Every generated file as relative path -> text; pure and deterministic in ``seed``."""
    sentiment = sentiment_splits(seed)
    generation = generation_splits(seed)
    forbidden: set[str] = set()
    for split in ("validation", "eval"):
        forbidden.update(user_texts(sentiment[split]))
        forbidden.update(user_texts(generation[split]))
        forbidden.update(r["messages"][-1]["content"] for r in generation[split])
    corpus = corpus_lines(seed, forbidden)
    corpus_set = set(corpus)
    _check_held_out("sentiment", sentiment, corpus_set)
    _check_held_out("generation", generation, corpus_set)
    files = {f"sentiment/{split}.jsonl": to_jsonl(sentiment[split]) for split in SPLITS}
    files.update({f"generation/{split}.jsonl": to_jsonl(generation[split]) for split in SPLITS})
    files["corpus.txt"] = "".join(line + "\n" for line in corpus)
    files["README.md"] = _readme(seed, sentiment, generation, corpus)
    return files


def write_fixtures(out_dir: str | Path = "fixtures", seed: int = 0) -> list[Path]:
    """Write the generated files under ``out_dir`` (other files there are left alone)."""
    out = Path(out_dir)
    written = []
    for relative, text in render_fixtures(seed).items():
        path = out / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
        except OSError as exc:
            raise HarnessError(f"{path}: cannot write fixture file: {exc.strerror or exc}") from exc
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m harness.data.synthetic [--out DIR] [--seed N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.data.synthetic",
        description="Write the seeded fixture datasets (sentiment, generation, corpus).")
    parser.add_argument("--out", default="fixtures", help="output folder (default: fixtures)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args(argv)
    try:
        paths = write_fixtures(args.out, args.seed)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
