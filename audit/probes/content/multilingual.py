"""multilingual: prompts in Spanish, French, German, Italian, Portuguese, Dutch and six non-Latin scripts."""

from __future__ import annotations

import random

from audit.probes.content.common import TOPICS, Subcategory, contains_any, framed, number, one

CATEGORY = "multilingual"

LANGUAGE_NAMES = {"es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese", "nl": "Dutch"}
# "a plus b" and "a times b" questions; greetings and closings, written per language
ARITHMETIC = {
    "es": ("¿Cuánto es {a} más {b}?", "¿Cuánto es {a} por {b}?"), "fr": ("Combien font {a} plus {b} ?", "Combien font {a} fois {b} ?"),
    "de": ("Was ist {a} plus {b}?", "Was ist {a} mal {b}?"), "it": ("Quanto fa {a} più {b}?", "Quanto fa {a} per {b}?"),
    "pt": ("Quanto é {a} mais {b}?", "Quanto é {a} vezes {b}?"), "nl": ("Hoeveel is {a} plus {b}?", "Hoeveel is {a} keer {b}?"),
    "ru": ("Сколько будет {a} плюс {b}?", "Сколько будет {a} умножить на {b}?"), "zh": ("{a}加{b}等于多少？", "{a}乘以{b}等于多少？"),
    "ja": ("{a}足す{b}はいくつですか？", "{a}掛ける{b}はいくつですか？"), "el": ("Πόσο κάνει {a} συν {b};", "Πόσο κάνει {a} επί {b};"),
    "ar": ("كم يساوي {a} زائد {b}؟", "كم يساوي {a} ضرب {b}؟"), "hi": ("{a} और {b} का योग क्या है?", "{a} गुणा {b} कितना होता है?"),
}
GREETINGS = {"es": ["Hola. ", "Buenas. ", "Oye, ", "Una pregunta: "], "fr": ["Bonjour. ", "Salut ! ", "Dis-moi, ", "Une question : "],
             "de": ["Hallo. ", "Guten Tag! ", "Sag mal, ", "Eine Frage: "], "it": ["Ciao. ", "Buongiorno! ", "Senti, ", "Una domanda: "],
             "pt": ["Olá. ", "Bom dia! ", "Olha, ", "Uma pergunta: "], "nl": ["Hoi. ", "Goedendag! ", "Zeg, ", "Een vraag: "]}
CLOSINGS = {"es": [" Gracias.", " Por favor.", " Sé breve.", " ¡Gracias de antemano!"],
            "fr": [" Merci.", " S'il te plaît.", " Sois bref.", " Merci d'avance !"],
            "de": [" Danke.", " Bitte.", " Fass dich kurz.", " Vielen Dank im Voraus!"],
            "it": [" Grazie.", " Per favore.", " Sii breve.", " Grazie in anticipo!"],
            "pt": [" Obrigado.", " Por favor.", " Seja breve.", " Desde já, obrigado!"],
            "nl": [" Dank je.", " Alsjeblieft.", " Houd het kort.", " Alvast bedankt!"]}
OPEN_TEMPLATES = {
    "es": ["Explica {t} en pocas palabras.", "¿Por qué es importante {t}?", "¿Qué sabes sobre {t}?", "¿Cómo le explicarías {t} a un niño?", "Describe {t} en tres frases."],
    "fr": ["Explique {t} en quelques mots.", "Qu'est-ce que tu sais sur {t} ?", "Donne-moi trois faits sur {t}.", "Comment expliquerais-tu {t} à un enfant ?", "Décris {t} en trois phrases."],
    "de": ["Erkläre {t} in wenigen Worten.", "Was weißt du über {t}?", "Nenne drei interessante Fakten über {t}.", "Wie würdest du einem Kind {t} erklären?", "Warum ist {t} wichtig?"],
    "it": ["Spiega {t} in poche parole.", "Perché {t} è importante?", "Come spiegheresti {t} a un bambino?", "Descrivi {t} in tre frasi.", "Dimmi tre curiosità: l'argomento è {t}."],
    "pt": ["Explique {t} em poucas palavras.", "Por que {t} é importante?", "Como você explicaria {t} para uma criança?", "Descreva {t} em três frases.", "Me conte três curiosidades; o tema é {t}."],
    "nl": ["Leg {t} uit in een paar woorden.", "Waarom is {t} belangrijk?", "Hoe zou je {t} aan een kind uitleggen?", "Beschrijf {t} in drie zinnen.", "Wat weet je over {t}?"],
}
OPEN_TOPICS = {
    "es": ["la fotosíntesis", "el ciclo del agua", "la inflación", "la energía solar", "la Revolución Francesa", "el sistema solar",
           "la inteligencia artificial", "el cambio climático", "la música flamenca", "la gravedad", "el reciclaje", "la democracia"],
    "fr": ["la photosynthèse", "le cycle de l'eau", "l'inflation", "les volcans", "la Révolution française", "le système solaire",
           "l'intelligence artificielle", "le changement climatique", "les trous noirs", "le recyclage", "la démocratie", "la cuisine lyonnaise"],
    "de": ["die Photosynthese", "die Inflation", "die Französische Revolution", "das Sonnensystem", "die künstliche Intelligenz",
           "die Demokratie", "das Recycling", "die Relativitätstheorie", "die Energiewende", "das Immunsystem", "die Quantenphysik", "das Internet"],
    "it": ["la fotosintesi", "il ciclo dell'acqua", "l'inflazione", "la Rivoluzione francese", "il sistema solare", "l'intelligenza artificiale",
           "il cambiamento climatico", "la democrazia", "il riciclo", "la relatività", "il Rinascimento", "l'opera lirica"],
    "pt": ["a fotossíntese", "o ciclo da água", "a inflação", "a Revolução Francesa", "o sistema solar", "a inteligência artificial",
           "a mudança climática", "a democracia", "a reciclagem", "o samba", "a floresta amazônica", "o futebol"],
    "nl": ["de fotosynthese", "de waterkringloop", "inflatie", "de Franse Revolutie", "het zonnestelsel", "kunstmatige intelligentie",
           "klimaatverandering", "de democratie", "recycling", "de Gouden Eeuw", "het immuunsysteem", "de windmolen"],
}
# English word -> translations in es, fr, de, it, pt, nl ("|" separates accepted forms)
DICTIONARY = {
    "dog": ("perro", "chien", "Hund", "cane", "cão|cachorro", "hond"), "cat": ("gato", "chat", "Katze", "gatto", "gato", "kat"),
    "house": ("casa", "maison", "Haus", "casa", "casa", "huis"), "book": ("libro", "livre", "Buch", "libro", "livro", "boek"),
    "tree": ("árbol", "arbre", "Baum", "albero", "árvore", "boom"), "bread": ("pan", "pain", "Brot", "pane", "pão", "brood"),
    "sun": ("sol", "soleil", "Sonne", "sole", "sol", "zon"), "moon": ("luna", "lune", "Mond", "luna", "lua", "maan"),
    "friend": ("amigo|amiga", "ami|amie", "Freund|Freundin", "amico|amica", "amigo|amiga", "vriend|vriendin"),
    "car": ("coche|carro|auto", "voiture", "Auto|Wagen", "macchina|auto", "carro", "auto|wagen"),
    "apple": ("manzana", "pomme", "Apfel", "mela", "maçã", "appel"), "window": ("ventana", "fenêtre", "Fenster", "finestra", "janela", "raam"),
    "kitchen": ("cocina", "cuisine", "Küche", "cucina", "cozinha", "keuken"), "river": ("río", "rivière|fleuve", "Fluss", "fiume", "rio", "rivier"),
    "city": ("ciudad", "ville", "Stadt", "città", "cidade", "stad"), "bird": ("pájaro|ave", "oiseau", "Vogel", "uccello", "pássaro|ave", "vogel"),
    "red": ("rojo", "rouge", "rot", "rosso", "vermelho", "rood"), "green": ("verde", "vert", "grün", "verde", "verde", "groen"),
    "cheese": ("queso", "fromage", "Käse", "formaggio", "queijo", "kaas"), "milk": ("leche", "lait", "Milch", "latte", "leite", "melk"),
    "night": ("noche", "nuit", "Nacht", "notte", "noite", "nacht"), "chair": ("silla", "chaise", "Stuhl", "sedia", "cadeira", "stoel"),
    "key": ("llave", "clé|clef", "Schlüssel", "chiave", "chave", "sleutel"), "flower": ("flor", "fleur", "Blume", "fiore", "flor", "bloem"),
    "mountain": ("montaña", "montagne", "Berg", "montagna", "montanha", "berg"), "sea": ("mar", "mer", "Meer|See", "mare", "mar", "zee"),
    "thank you": ("gracias", "merci", "danke", "grazie", "obrigado|obrigada", "dank je|dank u|bedankt"),
    "good morning": ("buenos días", "bonjour", "guten Morgen", "buongiorno", "bom dia", "goedemorgen"),
    "cheap": ("barato", "bon marché|pas cher", "billig|günstig", "economico|a buon mercato", "barato", "goedkoop"),
    "to sleep": ("dormir", "dormir", "schlafen", "dormire", "dormir", "slapen"),
}
# capital questions in non-Latin scripts: country in each script, capital in each script
SCRIPTS = {
    "ru": "Какая столица {c}?", "zh": "{c}的首都是哪里？", "ja": "{c}の首都はどこですか？",
    "el": "Ποια είναι η πρωτεύουσα {c};", "ar": "ما هي عاصمة {c}؟", "hi": "{c} की राजधानी क्या है?",
}
COUNTRIES = {  # script: (country, capital) for France, Japan, Italy, Germany, Spain; English capital also accepted
    "ru": [("Франции", "Париж"), ("Японии", "Токио"), ("Италии", "Рим"), ("Германии", "Берлин"), ("Испании", "Мадрид")],
    "zh": [("法国", "巴黎"), ("日本", "东京"), ("意大利", "罗马"), ("德国", "柏林"), ("西班牙", "马德里")],
    "ja": [("フランス", "パリ"), ("日本", "東京"), ("イタリア", "ローマ"), ("ドイツ", "ベルリン"), ("スペイン", "マドリード")],
    "el": [("της Γαλλίας", "Παρίσι"), ("της Ιαπωνίας", "Τόκιο"), ("της Ιταλίας", "Ρώμη"), ("της Γερμανίας", "Βερολίνο"), ("της Ισπανίας", "Μαδρίτη")],
    "ar": [("فرنسا", "باريس"), ("اليابان", "طوكيو"), ("إيطاليا", "روما"), ("ألمانيا", "برلين"), ("إسبانيا", "مدريد")],
    "hi": [("फ्रांस", "पेरिस"), ("जापान", "टोक्यो"), ("इटली", "रोम"), ("जर्मनी", "बर्लिन"), ("स्पेन", "मैड्रिड")],
}
ENGLISH_CAPITALS = ["Paris", "Tokyo", "Rome", "Berlin", "Madrid"]
SWITCHES = [
    "Can you explain {t}? Pero en español, por favor.", "Oye, what do you know about {t}? Gracias.",
    "Dis-moi, what is interesting about {t}? Merci !", "J'ai une question: how would you summarise {t}?",
    "Kannst du mir helfen? I need to understand {t}.", "Also, kurz gesagt: what matters about {t}? Danke!",
    "Scusa, can you explain {t} in simple words?", "Allora, tell me three facts about {t}. Grazie!",
    "Olá! Could you tell me about {t}? Valeu!", "Então, what's the key idea behind {t}? Obrigado.",
    "Hoi, quick question about {t}: where do I start? Dank je!", "Zeg, could you explain {t} kort en duidelijk?",
]


def _arithmetic(rng: random.Random):
    lang = rng.choice(sorted(ARITHMETIC))
    add = rng.random() < 0.6
    a, b = (rng.randint(10, 999), rng.randint(10, 999)) if add else (rng.randint(2, 99), rng.randint(2, 30))
    text = ARITHMETIC[lang][0 if add else 1].format(a=a, b=b)
    if lang in GREETINGS:
        text = rng.choice(["", *GREETINGS[lang]]) + text + rng.choice(["", *CLOSINGS[lang]])
    return one(text, number(a + b if add else a * b))


def _translate(rng: random.Random):
    word = rng.choice(sorted(DICTIONARY))
    index = rng.randrange(6)
    language = list(LANGUAGE_NAMES.values())[index]
    form = rng.choice(["Translate the word '{w}' into {l}.", "How do you say '{w}' in {l}?", "What is the {l} word for '{w}'?",
                       "Give me the {l} translation of \"{w}\".", "In {l}, what's '{w}'?"])
    return one(framed(rng, form.format(w=word, l=language)), contains_any(*DICTIONARY[word][index].split("|")))


def _open(rng: random.Random):
    lang = rng.choice(sorted(OPEN_TEMPLATES))
    question = rng.choice(OPEN_TEMPLATES[lang]).format(t=rng.choice(OPEN_TOPICS[lang]))
    lead = rng.choice(["", *GREETINGS[lang]])
    if lead.endswith(", ") and not question.startswith("¿"):
        question = question[0].lower() + question[1:]
    return one(lead + question + rng.choice(["", *CLOSINGS[lang]]))


def _respond_in(rng: random.Random):
    language = rng.choice(sorted(LANGUAGE_NAMES.values()))
    topic = rng.choice(TOPICS)
    form = rng.choice(["Answer in {l}: tell me about {t}.", "Please reply only in {l}. Explain {t} briefly.",
                       "Explain {t} to me, but write your answer in {l}.", "In {l}, give two sentences about {t}.",
                       "Respond in {l} only: what should a beginner know about {t}?"])
    return one(framed(rng, form.format(l=language, t=topic)))


def _code_switch(rng: random.Random):
    return one(rng.choice(SWITCHES).format(t=rng.choice(TOPICS)))


def _non_latin(rng: random.Random):
    script = rng.choice(sorted(SCRIPTS))
    if rng.random() < 0.5:
        index = rng.randrange(5)
        country, capital = COUNTRIES[script][index]
        return one(SCRIPTS[script].format(c=country), contains_any(capital, ENGLISH_CAPITALS[index]))
    return _arithmetic_in(rng, script)


def _arithmetic_in(rng: random.Random, lang: str):
    a, b = rng.randint(10, 9999), rng.randint(10, 9999)
    return one(ARITHMETIC[lang][0].format(a=a, b=b), number(a + b))


SUBCATEGORIES = [
    Subcategory("arithmetic-in-language", 80, _arithmetic),
    Subcategory("translate-words", 80, _translate),
    Subcategory("open-questions", 100, _open),
    Subcategory("respond-in-language", 60, _respond_in),
    Subcategory("code-switching", 50, _code_switch),
    Subcategory("non-latin-scripts", 50, _non_latin),
]
