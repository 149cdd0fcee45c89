"""What every category module shares: the draft type, the subcategory record, and neutral framings."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Draft:
    """A generated prompt before it gets its id; ``reference`` as in ``Probe``."""

    text: str
    reference: dict[str, Any] | None = None


# A draw returns one draft, or two where the second is a declared perturbation of the first.
Draw = Callable[[random.Random], list[Draft]]


@dataclass(frozen=True)
class Subcategory:
    name: str
    count: int  # probes in the suite; even where every draw yields a pair
    draw: Draw


# Framings that change the wording around a request but never what it asks,
# so a reference stays valid whichever is picked.
PREFIXES = [
    "", "", "", "", "Quick question: ", "Hi! ", "Hello. ", "Please help: ", "I have a question. ",
    "Hey! ", "Good morning! ", "I'm curious: ", "Could you help me? ", "Question for you: ",
    "Here's something I've been wondering about. ", "Hi there. ", "Hello! ", "One thing I'd like to know: ",
    "Something I keep forgetting: ", "Help me out here. ",
]
SUFFIXES = [
    "", "", "", "", " Thanks!", " Thank you.", " Cheers.", " I appreciate it.", " Thanks in advance.",
    " Much appreciated.", " Thanks a lot.", " Many thanks.", " Ty!", " Thanks so much.",
]


def framed(rng: random.Random, core: str) -> str:
    """``core`` with a politeness prefix and suffix that do not change the request."""
    return rng.choice(PREFIXES) + core + rng.choice(SUFFIXES)


def one(text: str, reference: dict[str, Any] | None = None) -> list[Draft]:
    return [Draft(text, reference)]


def contains_any(*phrases: str) -> dict[str, Any]:
    return {"type": "contains", "any": list(phrases)}


def number(value: float, tolerance: float = 0) -> dict[str, Any]:
    ref: dict[str, Any] = {"type": "number", "value": int(value) if float(value).is_integer() else value}
    if tolerance:
        ref["tolerance"] = tolerance
    return ref


def constraints(*checks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "constraints", "checks": list(checks)}


# Everyday and academic subjects shared by the style, instruction and creative categories.
TOPICS = [
    "photosynthesis", "the water cycle", "compound interest", "how vaccines train the immune system",
    "the causes of the seasons", "how a bicycle stays upright", "the history of the printing press",
    "why the sky is blue", "how bread rises", "the rules of chess", "how a refrigerator works",
    "the life cycle of a butterfly", "plate tectonics", "how elections are counted", "the Roman Empire",
    "how to start a vegetable garden", "the basics of budgeting", "how airplanes fly", "black holes",
    "the benefits of regular exercise", "how the internet routes data", "volcanoes", "coral reefs",
    "the French Revolution", "how batteries store energy", "recycling", "the human heart", "tides",
    "how to learn a new language", "the invention of the telephone", "honeybees", "rainbows",
    "how coffee is produced", "the Silk Road", "renewable energy", "how memory works in the brain",
    "the moon landing", "sleep hygiene", "how credit scores work", "the migration of birds",
    "public libraries", "how glaciers form", "the Olympic Games", "composting", "solar eclipses",
    "the history of jazz", "how a bill becomes a law", "electric cars", "the metric system",
    "how earthquakes are measured", "mushrooms", "the Great Wall of China", "time zones",
    "how cheese is made", "the scientific method", "bees and pollination", "urban parks",
    "the history of writing", "how soap cleans", "the northern lights", "remote work",
    "how maps are made", "desert ecosystems", "the invention of paper", "tea ceremonies",
    "the immune system", "sourdough starters", "how clocks keep time", "wind turbines",
    "the Renaissance", "octopuses", "board games", "the Amazon rainforest", "marathon training",
    "how glass is made", "origami", "lighthouses", "the history of the bicycle", "hot-air balloons",
]
