"""factual: common and long-tail knowledge with answers a checker can find in the reply."""

from __future__ import annotations

import random

from audit.probes.content.common import Subcategory, contains_any, framed, number, one

CATEGORY = "factual"

# country, capital and accepted spellings
CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
    ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"), ("Canada", "Ottawa"), ("Australia", "Canberra"),
    ("Brazil", "Brasília|Brasilia"), ("Argentina", "Buenos Aires"), ("Mexico", "Mexico City"), ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"), ("Nigeria", "Abuja"), ("South Korea", "Seoul"), ("Russia", "Moscow"), ("Turkey", "Ankara"),
    ("Greece", "Athens"), ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"),
    ("Denmark", "Copenhagen"), ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Switzerland", "Bern|Berne"),
    ("the Netherlands", "Amsterdam"), ("Belgium", "Brussels"), ("Ireland", "Dublin"), ("the United Kingdom", "London"),
    ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("Indonesia", "Jakarta"), ("the Philippines", "Manila"),
    ("Peru", "Lima"), ("Chile", "Santiago"), ("Colombia", "Bogotá|Bogota"), ("Venezuela", "Caracas"),
    ("Cuba", "Havana"), ("Morocco", "Rabat"), ("Ethiopia", "Addis Ababa"), ("Ghana", "Accra"), ("Iran", "Tehran"),
    ("Iraq", "Baghdad"), ("Saudi Arabia", "Riyadh"), ("Pakistan", "Islamabad"), ("Bangladesh", "Dhaka"),
    ("Nepal", "Kathmandu"), ("New Zealand", "Wellington"), ("Hungary", "Budapest"), ("the Czech Republic", "Prague"),
    ("Romania", "Bucharest"), ("Ukraine", "Kyiv|Kiev"), ("Iceland", "Reykjavik|Reykjavík"),
]
RARE_CAPITALS = [
    ("Bhutan", "Thimphu"), ("Burkina Faso", "Ouagadougou"), ("Kyrgyzstan", "Bishkek"), ("Tajikistan", "Dushanbe"),
    ("Turkmenistan", "Ashgabat"), ("Laos", "Vientiane"), ("Mali", "Bamako"), ("Niger", "Niamey"),
    ("Chad", "N'Djamena|Ndjamena"), ("Suriname", "Paramaribo"), ("Guyana", "Georgetown"), ("Eritrea", "Asmara"),
    ("Malawi", "Lilongwe"), ("Zambia", "Lusaka"), ("Namibia", "Windhoek"), ("Botswana", "Gaborone"),
    ("Madagascar", "Antananarivo"), ("Fiji", "Suva"), ("Vanuatu", "Port Vila"), ("Samoa", "Apia"),
    ("Palau", "Ngerulmud"), ("Moldova", "Chișinău|Chisinau|Kishinev"), ("Albania", "Tirana"),
    ("North Macedonia", "Skopje"), ("Montenegro", "Podgorica"), ("Latvia", "Riga"), ("Lithuania", "Vilnius"),
    ("Estonia", "Tallinn"), ("Slovenia", "Ljubljana"), ("Slovakia", "Bratislava"), ("Armenia", "Yerevan"),
    ("Azerbaijan", "Baku"), ("Uruguay", "Montevideo"), ("Paraguay", "Asunción|Asuncion"), ("Mongolia", "Ulaanbaatar|Ulan Bator"),
    ("Mozambique", "Maputo"), ("Rwanda", "Kigali"), ("Uganda", "Kampala"), ("Senegal", "Dakar"), ("Tunisia", "Tunis"),
]
CONTINENTS = {
    "Europe": ["France", "Germany", "Italy", "Spain", "Portugal", "Norway", "Sweden", "Finland", "Poland", "Austria",
               "Hungary", "Ireland", "Belgium", "Latvia", "Estonia", "Slovenia", "Albania", "Iceland", "Denmark", "Greece"],
    "Asia": ["Japan", "China", "India", "Thailand", "Vietnam", "Nepal", "Bangladesh", "Mongolia", "Laos", "Bhutan",
             "Pakistan", "Kyrgyzstan", "South Korea", "Cambodia", "Malaysia"],
    "Africa": ["Kenya", "Nigeria", "Egypt", "Ghana", "Ethiopia", "Mali", "Niger", "Chad", "Zambia", "Namibia",
               "Botswana", "Madagascar", "Rwanda", "Uganda", "Senegal", "Morocco", "Tunisia", "Malawi"],
    "South America": ["Brazil", "Argentina", "Peru", "Chile", "Colombia", "Venezuela", "Uruguay", "Paraguay",
                      "Bolivia", "Ecuador", "Suriname", "Guyana"],
    "North America": ["Canada", "Mexico", "the United States"],
    "Oceania": ["Australia", "New Zealand", "Fiji", "Samoa", "Vanuatu", "Tonga", "Palau"],
}
# name, symbol, atomic number
ELEMENTS = [
    ("hydrogen", "H", 1), ("helium", "He", 2), ("lithium", "Li", 3), ("beryllium", "Be", 4), ("boron", "B", 5),
    ("carbon", "C", 6), ("nitrogen", "N", 7), ("oxygen", "O", 8), ("fluorine", "F", 9), ("neon", "Ne", 10),
    ("sodium", "Na", 11), ("magnesium", "Mg", 12), ("aluminium", "Al", 13), ("silicon", "Si", 14),
    ("phosphorus", "P", 15), ("sulfur", "S", 16), ("chlorine", "Cl", 17), ("argon", "Ar", 18), ("potassium", "K", 19),
    ("calcium", "Ca", 20), ("titanium", "Ti", 22), ("chromium", "Cr", 24), ("manganese", "Mn", 25), ("iron", "Fe", 26),
    ("cobalt", "Co", 27), ("nickel", "Ni", 28), ("copper", "Cu", 29), ("zinc", "Zn", 30), ("arsenic", "As", 33),
    ("bromine", "Br", 35), ("krypton", "Kr", 36), ("silver", "Ag", 47), ("tin", "Sn", 50), ("iodine", "I", 53),
    ("xenon", "Xe", 54), ("tungsten", "W", 74), ("platinum", "Pt", 78), ("gold", "Au", 79), ("mercury", "Hg", 80),
    ("lead", "Pb", 82), ("uranium", "U", 92), ("osmium", "Os", 76), ("iridium", "Ir", 77), ("bismuth", "Bi", 83),
    ("radon", "Rn", 86), ("strontium", "Sr", 38), ("zirconium", "Zr", 40), ("molybdenum", "Mo", 42),
    ("palladium", "Pd", 46), ("cadmium", "Cd", 48), ("antimony", "Sb", 51), ("caesium", "Cs", 55), ("barium", "Ba", 56),
    ("gallium", "Ga", 31), ("germanium", "Ge", 32), ("selenium", "Se", 34), ("rubidium", "Rb", 37), ("vanadium", "V", 23),
    ("scandium", "Sc", 21), ("plutonium", "Pu", 94), ("radium", "Ra", 88), ("thorium", "Th", 90),
]
BOOKS = [
    ("Pride and Prejudice", "Austen"), ("Nineteen Eighty-Four", "Orwell"), ("Moby-Dick", "Melville"),
    ("War and Peace", "Tolstoy"), ("Don Quixote", "Cervantes"), ("Hamlet", "Shakespeare"), ("The Odyssey", "Homer"),
    ("Frankenstein", "Shelley"), ("Dracula", "Stoker"), ("The Great Gatsby", "Fitzgerald"),
    ("To Kill a Mockingbird", "Harper Lee"), ("Crime and Punishment", "Dostoevsky|Dostoyevsky"),
    ("One Hundred Years of Solitude", "Márquez|Marquez"), ("The Divine Comedy", "Dante"), ("Les Misérables", "Hugo"),
    ("Madame Bovary", "Flaubert"), ("Ulysses", "Joyce"), ("The Trial", "Kafka"), ("Brave New World", "Huxley"),
    ("Jane Eyre", "Charlotte Brontë|Charlotte Bronte"), ("Wuthering Heights", "Emily Brontë|Emily Bronte"),
    ("On the Origin of Species", "Darwin"), ("Great Expectations", "Dickens"), ("Oliver Twist", "Dickens"),
    ("The Adventures of Tom Sawyer", "Twain"), ("Anna Karenina", "Tolstoy"), ("The Catcher in the Rye", "Salinger"),
    ("Of Mice and Men", "Steinbeck"), ("The Grapes of Wrath", "Steinbeck"), ("Fahrenheit 451", "Bradbury"),
    ("The Hobbit", "Tolkien"), ("The Little Prince", "Saint-Exupéry|Saint-Exupery"), ("Faust", "Goethe"),
    ("The Metamorphosis", "Kafka"), ("Things Fall Apart", "Achebe"), ("Beloved", "Morrison"),
    ("The Old Man and the Sea", "Hemingway"), ("Alice's Adventures in Wonderland", "Carroll"),
    ("Gulliver's Travels", "Swift"), ("Robinson Crusoe", "Defoe"), ("Treasure Island", "Stevenson"),
    ("The Picture of Dorian Gray", "Wilde"), ("Middlemarch", "Eliot"), ("The Count of Monte Cristo", "Dumas"),
    ("Candide", "Voltaire"), ("Siddhartha", "Hesse"), ("The Stranger", "Camus"), ("Lord of the Flies", "Golding"),
    ("Animal Farm", "Orwell"), ("Heart of Darkness", "Conrad"), ("The Canterbury Tales", "Chaucer"),
    ("Paradise Lost", "Milton"),
]
# question, accepted answers ("|"-separated) or a number
SCIENCE = [
    ("How many legs does a spider have?", 8), ("Which gas do plants take in from the air for photosynthesis?", "carbon dioxide|CO2"),
    ("What is the boiling point of water at sea level, in degrees Celsius?", 100),
    ("How many planets are in our solar system?", 8), ("What is the largest planet in the solar system?", "Jupiter"),
    ("Which planet is closest to the Sun?", "Mercury"), ("What is the hardest natural material?", "diamond"),
    ("What is the chemical formula of water?", "H2O|H₂O"), ("How many bones are in the adult human body?", 206),
    ("Which organelle is called the powerhouse of the cell?", "mitochondria|mitochondrion"),
    ("Which organ pumps blood around the body?", "heart"), ("How many chromosomes does a typical human cell have?", 46),
    ("What is the freezing point of water in degrees Fahrenheit?", 32), ("Which planet is known as the Red Planet?", "Mars"),
    ("What is the largest ocean on Earth?", "Pacific"), ("What is the tallest mountain above sea level?", "Everest"),
    ("How many continents are there by the usual count?", 7), ("What is the smallest prime number?", 2),
    ("How many sides does a hexagon have?", 6), ("How many minutes are in a day?", 1440),
    ("Which planet is famous for its bright rings?", "Saturn"), ("What force keeps the planets in orbit around the Sun?", "gravity|gravitation"),
    ("What is the largest mammal?", "blue whale"), ("How many strings does a standard guitar have?", 6),
    ("How many keys does a standard piano have?", 88), ("At what temperature are Celsius and Fahrenheit equal?", -40),
    ("How many hearts does an octopus have?", 3), ("What is the largest hot desert in the world?", "Sahara"),
    ("Which vitamin does skin make when exposed to sunlight?", "vitamin D|D"),
    ("Which gas makes up most of Earth's atmosphere?", "nitrogen"), ("What is the SI unit of force?", "newton"),
    ("What is the SI unit of electrical resistance?", "ohm"), ("What is the SI unit of energy?", "joule"),
    ("What is the SI unit of power?", "watt"), ("What is the SI unit of frequency?", "hertz"),
    ("What do the interior angles of a triangle add up to, in degrees?", 180), ("What is the square root of 144?", 12),
    ("Who developed the theory of general relativity?", "Einstein"), ("Who proposed evolution by natural selection?", "Darwin"),
    ("Who formulated the three laws of motion?", "Newton"), ("Who discovered penicillin?", "Fleming"),
    ("Who painted the Mona Lisa?", "Leonardo|da Vinci"), ("Which composer wrote the Ninth Symphony with the Ode to Joy?", "Beethoven"),
    ("How many days does a leap year have?", 366), ("Which metal is liquid at room temperature?", "mercury"),
    ("How many teeth does an adult human usually have?", 32),
    ("Which blood type is called the universal donor?", "O negative|O-|O neg"),
]
SUFFIXES = ["", " Answer briefly.", " Just the answer, please.", " One word or number is enough.", " Keep it short.",
            " Explain in one sentence.", " Reply with the answer first."]


def _aliases(spec: str) -> dict:
    return contains_any(*spec.split("|"))


def _ask(rng: random.Random, question: str, reference: dict):
    return one(framed(rng, question + rng.choice(SUFFIXES)), reference)


def capital_question(rng: random.Random, table=CAPITALS):
    """A capital-city question and its reference (robustness reuses it as a base prompt)."""
    country, capital = rng.choice(table)
    question = rng.choice(["What is the capital of {c}?", "Which city is the capital of {c}?", "Name the capital city of {c}.",
                           "What city serves as {c}'s capital?", "{C}'s capital is which city?",
                           "Tell me the capital of {c}.", "Do you know the capital of {c}?"])
    return question.format(c=country, C=country[0].upper() + country[1:]), _aliases(capital)


def _capitals(rng: random.Random):
    return _ask(rng, *capital_question(rng))


def _rare_capitals(rng: random.Random):
    return _ask(rng, *capital_question(rng, RARE_CAPITALS))


def _elements(rng: random.Random):
    name, symbol, z = rng.choice(ELEMENTS)
    kind = rng.randrange(1 if symbol == "I" else 0, 3)  # "I" is a pronoun: never ask for iodine's symbol
    if kind == 0:
        q = rng.choice(["What is the chemical symbol for {n}?", "Which symbol does {n} have on the periodic table?",
                        "Give the element symbol of {n}.", "How is {n} written as a chemical symbol?"])
        # case-sensitive: the symbol "B" must not match the letter b in a word
        return _ask(rng, q.format(n=name), {"type": "contains", "any": [symbol], "case_sensitive": True})
    if kind == 1:
        q = rng.choice(["What is the atomic number of {n}?", "How many protons does an atom of {n} have?",
                        "Which atomic number does {n} have?", "Where is {n} on the periodic table by atomic number?"])
        return _ask(rng, q.format(n=name), number(z))
    q = rng.choice(["Which element has the symbol {s}?", "What element does the symbol {s} stand for?",
                    "Name the element with chemical symbol {s}.", "The symbol {s} on the periodic table is which element?"])
    return _ask(rng, q.format(s=symbol), contains_any(name, *(["aluminum"] if name == "aluminium" else []),
                                                      *(["cesium"] if name == "caesium" else []),
                                                      *(["sulphur"] if name == "sulfur" else [])))


def science_question(rng: random.Random):
    question, answer = rng.choice(SCIENCE)
    return question, number(answer) if isinstance(answer, int) else _aliases(answer)


def _science(rng: random.Random):
    return _ask(rng, *science_question(rng))


def _geography(rng: random.Random):
    continent = rng.choice(sorted(CONTINENTS))
    country = rng.choice(CONTINENTS[continent])
    q = rng.choice(["On which continent is {c}?", "Which continent is {c} part of?", "{c} lies on which continent?",
                    "Is {c} in Europe, Asia, Africa, the Americas or Oceania? Name the continent.",
                    "What continent would I fly to in order to visit {c}?"])
    aliases = [continent] + (["Australia"] if country == "Australia" else [])
    return _ask(rng, q.format(c=country), contains_any(*aliases))


def _authors(rng: random.Random):
    title, author = rng.choice(BOOKS)
    q = rng.choice(["Who wrote {t}?", "Who is the author of {t}?", "Which writer gave us {t}?", "{t} was written by whom?",
                    "Name the author of the book {t}.", "Whose work is {t}?"])
    return _ask(rng, q.format(t=f"'{title}'" if rng.random() < 0.5 else title), _aliases(author))


SUBCATEGORIES = [
    Subcategory("capitals", 80, _capitals),
    Subcategory("chemical-elements", 70, _elements),
    Subcategory("science-basics", 70, _science),
    Subcategory("geography", 60, _geography),
    Subcategory("authors", 50, _authors),
    Subcategory("long-tail-capitals", 90, _rare_capitals),
]
