"""creative: poems, stories, haiku, dialogues, slogans, worldbuilding, rewrites in a style."""

from __future__ import annotations

import random

from audit.probes.content.common import TOPICS, Subcategory, constraints, framed, one

CATEGORY = "creative"

SUBJECTS = [
    "a lighthouse keeper", "an old bicycle", "the first snow of winter", "a lost key", "a robot learning to paint",
    "a city at dawn", "a cat who hates Mondays", "the smell of rain", "a forgotten library", "a kite stuck in a tree",
    "a grandmother's recipe book", "a night train", "a sunflower field", "an abandoned space station", "a shy dragon",
    "a busy bakery", "the last day of summer", "a message in a bottle", "a mountain village", "a broken clock",
    "a street musician", "the ocean floor", "a paper crane", "a moving day", "an unexpected friendship",
    "a thunderstorm at sea", "a quiet museum", "a bee's first flight", "a jar of fireflies", "a chess game in the park",
    "a snail's long journey", "a detective's umbrella", "a tiny island", "a time traveller's postcard", "a garden gnome",
]
POEM_FORMS = ["a short poem", "a rhyming poem", "a free-verse poem", "a sonnet", "a limerick", "an ode", "a four-line poem",
              "a poem with an ABAB rhyme scheme", "a villanelle", "a ballad stanza"]
MOODS = ["", " with a hopeful mood", " in a melancholy tone", " that is funny", " full of vivid imagery",
         " for a child", " with a surprising last line", " in the second person", " without using rhyme"]
STORY_FORMS = ["a very short story", "a 100-word story", "a fable with a moral", "a fairy tale opening", "a science-fiction vignette",
               "a mystery in five sentences", "a bedtime story", "a story told in diary entries", "a story that ends with a twist",
               "the first paragraph of a novel"]
DIALOGUE_PAIRS = [("a barista", "a tired astronaut"), ("two pigeons", "a statue"), ("a teacher", "a curious alien"),
                  ("a knight", "a dragon who wants to retire"), ("a plant", "its owner"), ("two rival chefs", "a food critic"),
                  ("a ghost", "a new homeowner"), ("a grandmother", "her smart speaker"), ("a cat", "a vacuum cleaner"),
                  ("a detective", "a parrot witness"), ("a pirate", "a tax inspector"), ("a robot", "a lonely lighthouse")]
PRODUCTS = ["a solar-powered backpack", "a tea shop", "a bicycle repair café", "a language-learning app", "a bakery that opens at 4am",
            "a library card", "a reusable coffee cup", "a museum of lost socks", "a plant-sitting service", "a quiet co-working space",
            "a board game café", "an electric scooter", "a pet-friendly hotel", "a recycling campaign", "a community garden"]
WORLDS = ["a city built on the back of a giant turtle", "a planet where it rains upwards", "a kingdom where music is currency",
          "an underwater school", "a desert town that moves every night", "a library that contains every unwritten book",
          "a forest where trees can talk", "a space station run by cats", "an island where time runs backwards",
          "a mountain monastery for retired superheroes", "a village inside a cloud", "a train that never stops"]
STYLES = ["Shakespeare", "a pirate", "a Victorian novelist", "a sports commentator", "a noir detective", "a fairy-tale narrator",
          "a nature documentary narrator", "a medieval herald", "a stand-up comedian", "a haiku master", "a 1920s newspaper",
          "a legal contract", "a cooking show host", "a weather forecaster", "a very excited toddler"]
SENTENCES = ["The meeting has been moved to Thursday.", "Please remember to water the plants.", "The printer is out of paper again.",
             "I'll be a few minutes late.", "The cat knocked over my coffee.", "Our team won the match yesterday.",
             "The train was cancelled because of snow.", "Dinner is ready.", "I lost my umbrella on the bus.",
             "The shop closes at six.", "The Wi-Fi password has changed.", "My code finally compiles.",
             "It might rain this afternoon.", "The library books are due tomorrow.", "We need more milk."]


def _poem(rng: random.Random):
    form = rng.choice(["Write {f} about {s}{m}.", "Compose {f} on the theme of {s}{m}.", "Could you write {f} about {s}{m}?"])
    return one(framed(rng, form.format(f=rng.choice(POEM_FORMS), s=rng.choice(SUBJECTS + TOPICS), m=rng.choice(MOODS))))


def _story(rng: random.Random):
    subject = rng.choice(SUBJECTS)
    form = rng.choice(["Write {f} about {s}.", "Tell me {f} featuring {s}.", "I'd love {f} in which {s} plays the main role."])
    return one(framed(rng, form.format(f=rng.choice(STORY_FORMS), s=subject)))


def _haiku(rng: random.Random):
    subject = rng.choice(SUBJECTS + TOPICS)
    if rng.random() < 0.5:
        return one(framed(rng, f"Write a haiku about {subject}. Output only the three lines."),
                   constraints({"kind": "max_words", "value": 25}))
    return one(framed(rng, rng.choice(["Write a haiku about {s}.", "Give me two haiku about {s}.", "A haiku on {s}, please."]).format(s=subject)))


def _dialogue(rng: random.Random):
    a, b = rng.choice(DIALOGUE_PAIRS)
    topic = rng.choice(TOPICS)
    form = rng.choice(["Write a short dialogue between {a} and {b} about {t}.", "Script a funny conversation where {a} explains {t} to {b}.",
                       "Write six lines of dialogue: {a} and {b} argue about {t}."])
    return one(framed(rng, form.format(a=a, b=b, t=topic)))


def _slogan(rng: random.Random):
    product = rng.choice(PRODUCTS)
    n = rng.randint(2, 6)
    form = rng.choice(["Write {n} catchy slogans for {p}.", "Come up with {n} taglines for {p}.", "Give me {n} short ad lines for {p}.",
                       "Write a 30-second radio ad for {p}."])
    return one(framed(rng, form.format(n=n, p=product)))


def _world(rng: random.Random):
    world = rng.choice(WORLDS)
    aspect = rng.choice(["daily life", "history", "food", "laws", "festivals", "economy", "children's games",
                         "architecture", "weather", "biggest mystery"])
    form = rng.choice(["Describe the {a} of {w}.", "Invent the {a} of {w}.", "Worldbuilding prompt: {w}. Tell me about its {a}."])
    return one(framed(rng, form.format(a=aspect, w=world)))


def _rewrite(rng: random.Random):
    sentence, style = rng.choice(SENTENCES), rng.choice(STYLES)
    form = rng.choice(["Rewrite this sentence as {s} would say it: \"{x}\"", "Say \"{x}\" in the style of {s}.",
                       "How would {s} phrase this? {x}"])
    return one(framed(rng, form.format(s=style, x=sentence)))


SUBCATEGORIES = [
    Subcategory("poem", 80, _poem),
    Subcategory("short-story", 70, _story),
    Subcategory("haiku", 50, _haiku),
    Subcategory("dialogue", 50, _dialogue),
    Subcategory("slogans-ads", 50, _slogan),
    Subcategory("worldbuilding", 50, _world),
    Subcategory("style-rewrite", 70, _rewrite),
]
