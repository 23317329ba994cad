"""Short forms people go by (William and Bill, Margaret and Peggy): data the linkage owns.

A short form is the same forename, not a typo of it: "Bill" and "William" share no letters
a string distance would notice, so the comparison looks them up here. The synthetic data
generator writes the forms of SHORT_FORMS into its records; EXTRA_SHORT_FORMS are further
forms the linkage knows but the generator does not use, so that accuracy on generated data
is not tuned to exactly the table that made it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pandas as pd
from rapidfuzz.distance import OSA

from care_etl.standardise.names import match_key

#: Formal forename -> the short forms it is commonly written as, most usual first.
SHORT_FORMS: dict[str, tuple[str, ...]] = {
    "William": ("Bill", "Will", "Billy"),
    "Robert": ("Bob", "Rob", "Bobby", "Bert"),
    "Richard": ("Dick", "Rich", "Rick"),
    "Margaret": ("Peggy", "Maggie", "Meg", "Marge"),
    "Elizabeth": ("Liz", "Beth", "Lizzie", "Betty", "Libby"),
    "Alexander": ("Alex", "Sasha", "Sandy"),
    "Alexandra": ("Alex", "Sasha", "Sandra"),
    "Aleksander": ("Olek", "Alek"),
    "Aleksandra": ("Ola", "Sasha"),
    "James": ("Jim", "Jimmy", "Jamie"),
    "John": ("Jack", "Johnny"),
    "Thomas": ("Tom", "Tommy"),
    "Edward": ("Ed", "Eddie", "Ted", "Ned"),
    "Charles": ("Charlie", "Chas"),
    "Anthony": ("Tony",),
    "Michael": ("Mike", "Mick", "Mickey"),
    "Christopher": ("Chris", "Kit"),
    "Christine": ("Chris", "Chrissie"),
    "Joseph": ("Joe", "Joey"),
    "Patrick": ("Pat", "Paddy"),
    "Patricia": ("Pat", "Patsy", "Trish"),
    "Francis": ("Frank",),
    "Frances": ("Fran", "Frankie"),
    "Catherine": ("Cathy", "Kate", "Katie", "Kath"),
    "Kathleen": ("Kath", "Kathy"),
    "Susan": ("Sue", "Susie"),
    "Deborah": ("Debbie", "Deb"),
    "Jacqueline": ("Jackie",),
    "Jennifer": ("Jenny", "Jen"),
    "Rebecca": ("Becky", "Becca"),
    "Victoria": ("Vicky", "Tori"),
    "Samantha": ("Sam",),
    "Samuel": ("Sam", "Sammy"),
    "Benjamin": ("Ben",),
    "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",),
    "Nicholas": ("Nick", "Nicky"),
    "Stephen": ("Steve",),
    "David": ("Dave", "Davey"),
    "Peter": ("Pete",),
    "Andrew": ("Andy", "Drew"),
    "Kenneth": ("Ken", "Kenny"),
    "Ronald": ("Ron", "Ronnie"),
    "Frederick": ("Fred", "Freddie"),
    "Albert": ("Bert", "Albie"),
    "Alfred": ("Alf", "Alfie"),
    "Stanley": ("Stan",),
    "Raymond": ("Ray",),
    "Leonard": ("Len", "Lenny"),
    "Harold": ("Harry",),
    "Dorothy": ("Dot", "Dolly"),
    "Barbara": ("Babs",),
    "Valerie": ("Val",),
    "Gillian": ("Gill", "Jill"),
    "Mary": ("Molly", "Polly"),
    "Ann": ("Annie",),
    "Anne": ("Annie",),
    "Jessica": ("Jess",),
    "Abigail": ("Abbie", "Abby"),
    "Isabella": ("Bella", "Izzy"),
    "Charlotte": ("Lottie", "Charlie"),
    "Joshua": ("Josh",),
    "Jacob": ("Jake",),
    "Oliver": ("Ollie",),
    "Nathan": ("Nate",),
    "Timothy": ("Tim",),
    "Gregory": ("Greg",),
    "Jonathan": ("Jon", "Jonny"),
    "Zachary": ("Zac",),
    "Philip": ("Phil",),
    "Geoffrey": ("Geoff",),
    "Trevor": ("Trev",),
    "Malcolm": ("Mal",),
    "Hilda": ("Hil",),
    "Marjorie": ("Marge",),
    "Emmanuel": ("Manny",),
    "Mohammed": ("Mo",),
    "Muhammad": ("Mo",),
    "Mohammad": ("Mo",),
    "Oluwaseun": ("Seun",),
    "Funmilayo": ("Funmi",),
    "Oluwakemi": ("Kemi",),
    "Babatunde": ("Tunde",),
    "Chukwuemeka": ("Emeka",),
    "Temitope": ("Tope",),
    "Adebayo": ("Bayo",),
    "Olumide": ("Mide",),
    "Małgorzata": ("Gosia",),
    "Katarzyna": ("Kasia",),
    "Wojciech": ("Wojtek",),
    "Krzysztof": ("Krzysiek",),
    "Józef": ("Józek",),
    "Agnieszka": ("Aga",),
    "Zofia": ("Zosia",),
    "Magdalena": ("Magda",),
    "Mateusz": ("Mati",),
    "José": ("Pepe",),
    "Francisco": ("Paco", "Chico"),
    "Alejandro": ("Álex",),
    "Conceição": ("São",),
    "Pádraig": ("Paddy",),
    "Séamus": ("Shay",),
    "Gurpreet": ("Gary",),
    "Harpreet": ("Harry",),
    "Jaswinder": ("Jas",),
    "Xiaoming": ("Ming",),
}


#: More formal forename -> short forms (the linkage reads these as well).
EXTRA_SHORT_FORMS: dict[str, tuple[str, ...]] = {
    "William": ("Wills", "Liam", "Willie", "Willy"),
    "Robert": ("Robbie", "Bobbie"),
    "Margaret": ("Maggie", "Madge", "Greta", "Mags", "Rita", "Daisy"),
    "Elizabeth": ("Eliza", "Bess", "Bessie", "Elsie", "Lisa", "Liza", "Betsy", "Lily"),
    "Alexander": ("Sacha", "Xander", "Lex", "Alec", "Alasdair"),
    "Alexandra": ("Sacha", "Lexie", "Alexa", "Sandie"),
    "John": ("Jon", "Jonny", "Jock", "Ian", "Sean"),
    "Jonathan": ("Jonny", "Johnny", "Nathan"),
    "Thomas": ("Thom",),
    "Edward": ("Eddy", "Teddy", "Ned"),
    "Charles": ("Chuck", "Chaz", "Chas"),
    "Michael": ("Mikey", "Micky", "Mikhail"),
    "Christopher": ("Christy", "Topher"),
    "Christina": ("Chris", "Tina", "Chrissie", "Kirsty"),
    "Christian": ("Chris",),
    "Joseph": ("Jo", "Jos", "Joss"),
    "Josephine": ("Jo", "Josie", "Jose"),
    "Joanne": ("Jo",),
    "Joanna": ("Jo",),
    "Catherine": ("Cath", "Cathie", "Kitty", "Kay", "Cat"),
    "Katherine": ("Kate", "Katie", "Kathy", "Kath", "Kitty", "Kat", "Kay"),
    "Kathryn": ("Kate", "Katie", "Kathy"),
    "Susan": ("Suzy", "Suzie", "Susie"),
    "Susannah": ("Sue", "Susie", "Suzy"),
    "Suzanne": ("Sue", "Suzy"),
    "Deborah": ("Debs", "Debra"),
    "Jennifer": ("Jenni", "Jennie", "Jenna"),
    "Rebecca": ("Bex", "Becks"),
    "Victoria": ("Vicki", "Vikki", "Vic"),
    "Samantha": ("Sammy", "Sammie"),
    "Benjamin": ("Benny", "Benji"),
    "Daniel": ("Dani",),
    "Danielle": ("Dani", "Danni"),
    "Matthew": ("Mat", "Matty"),
    "Nicholas": ("Nic", "Nico"),
    "Nicola": ("Nicky", "Nikki", "Nic"),
    "Stephen": ("Steven", "Stevie"),
    "Steven": ("Steve", "Stevie"),
    "David": ("Dai", "Davy"),
    "Peter": ("Pete", "Pedro"),
    "Andrew": ("Drew", "Andie"),
    "Anthony": ("Ant", "Anton"),
    "Antony": ("Tony", "Ant"),
    "Gerald": ("Gerry", "Jerry"),
    "Gerard": ("Gerry",),
    "Terence": ("Terry",),
    "Theresa": ("Terry", "Tess", "Tessa"),
    "Teresa": ("Terry", "Tess", "Tessa"),
    "Lawrence": ("Larry", "Laurie"),
    "Laurence": ("Larry", "Laurie"),
    "Henry": ("Harry", "Hal", "Hank"),
    "Harold": ("Hal", "Harry"),
    "Harriet": ("Hattie", "Harry"),
    "Douglas": ("Doug", "Dougie"),
    "Donald": ("Don", "Donnie"),
    "Dominic": ("Dom",),
    "Timothy": ("Timmy",),
    "Gregory": ("Greg",),
    "Jacob": ("Jake", "Jack"),
    "Jack": ("Jackie",),
    "Samuel": ("Sammy", "Sammie"),
    "Abigail": ("Gail",),
    "Amanda": ("Mandy",),
    "Miranda": ("Randy",),
    "Angela": ("Angie",),
    "Barbara": ("Barb", "Barbie"),
    "Beatrice": ("Bea", "Trixie"),
    "Caroline": ("Carrie", "Caro"),
    "Carol": ("Carrie",),
    "Dorothy": ("Dottie", "Dora"),
    "Eleanor": ("Ellie", "Nell", "Nellie", "Nora"),
    "Ellen": ("Nell", "Ellie"),
    "Helen": ("Nell", "Nellie"),
    "Emily": ("Emmy", "Em"),
    "Emma": ("Em",),
    "Florence": ("Flo", "Florrie", "Flossie"),
    "Frances": ("Franny", "Fanny"),
    "Francis": ("Frankie", "Fran"),
    "Gillian": ("Gilly",),
    "Gwendolyn": ("Gwen",),
    "Jacqueline": ("Jacky", "Jackie"),
    "Janet": ("Jan",),
    "Judith": ("Judy", "Jude"),
    "Louise": ("Lou", "Louie"),
    "Louisa": ("Lou",),
    "Lucy": ("Lu",),
    "Madeleine": ("Maddie", "Maddy"),
    "Madeline": ("Maddie", "Maddy"),
    "Matilda": ("Tilly", "Tilda", "Mattie"),
    "Natalie": ("Nat",),
    "Natasha": ("Tash", "Tasha", "Nat"),
    "Patricia": ("Patty", "Tricia"),
    "Penelope": ("Penny",),
    "Philippa": ("Pippa", "Pip"),
    "Rosemary": ("Rosie", "Rose"),
    "Sarah": ("Sally", "Sadie"),
    "Sophia": ("Sophie",),
    "Stephanie": ("Steph", "Stevie"),
    "Valerie": ("Val",),
    "Vincent": ("Vince", "Vinnie"),
    "Walter": ("Walt", "Wally"),
    "Wilfred": ("Wilf",),
    "Arthur": ("Art", "Artie"),
    "Archibald": ("Archie",),
    "Bernard": ("Bernie",),
    "Cameron": ("Cam",),
    "Clifford": ("Cliff",),
    "Cyril": ("Cy",),
    "Dennis": ("Den",),
    "Derek": ("Del",),
    "Eugene": ("Gene",),
    "Gabriel": ("Gabe",),
    "Gabrielle": ("Gabby", "Gabi"),
    "Herbert": ("Herb", "Bert"),
    "Hubert": ("Bert",),
    "Isaac": ("Ike", "Zac"),
    "Leonard": ("Leo",),
    "Lewis": ("Lew",),
    "Maximilian": ("Max",),
    "Maxwell": ("Max",),
    "Montgomery": ("Monty",),
    "Nathaniel": ("Nat", "Nate", "Nathan"),
    "Norman": ("Norm",),
    "Oswald": ("Ozzy",),
    "Reginald": ("Reg", "Reggie"),
    "Roderick": ("Rod", "Roddy"),
    "Rodney": ("Rod",),
    "Ronald": ("Ronnie",),
    "Sebastian": ("Seb",),
    "Sidney": ("Sid",),
    "Sydney": ("Syd",),
    "Solomon": ("Sol",),
    "Theodore": ("Theo", "Ted", "Teddy"),
    "Tobias": ("Toby",),
    "Vivian": ("Viv",),
    "Vivienne": ("Viv",),
    "Zachariah": ("Zach", "Zac", "Zack"),
    "Zachary": ("Zach", "Zack"),
    "Ivan": ("Vanya",),
    "Dmitri": ("Dima",),
    "Ekaterina": ("Katya",),
    "Yekaterina": ("Katya",),
    "Anastasia": ("Nastya", "Stacey", "Ana"),
    "Mikhail": ("Misha",),
    "Nikolai": ("Kolya",),
    "Vladimir": ("Volodya", "Vova"),
    "Tatiana": ("Tanya",),
    "Olga": ("Olya",),
    "Elena": ("Lena",),
    "Natalia": ("Natasha",),
    "Giuseppe": ("Beppe", "Peppe"),
    "Francesca": ("Franca", "Cesca"),
    "Guillermo": ("Memo",),
    "Ignacio": ("Nacho",),
    "Jesús": ("Chucho", "Chuy"),
    "Manuel": ("Manolo", "Manny"),
    "Dolores": ("Lola",),
    "Mercedes": ("Merche",),
    "Johannes": ("Hans", "Jan"),
    "Wolfgang": ("Wolf",),
    "Abdullah": ("Abdul",),
    "Abdulrahman": ("Abdul",),
    "Muhammad": ("Mohammed", "Mohammad", "Mohamed", "Muhammed"),
    "Siobhán": ("Siobhan",),
    "Bartholomew": ("Bart",),
}


def short_forms(forename: str) -> tuple[str, ...]:
    """The short forms of `forename` that the generator writes, or () when it has none."""
    return SHORT_FORMS.get(forename, ())


def groups() -> dict[str, list[int]]:
    """Each forename (as written) -> the ids of the groups it belongs to (a formal name and
    its forms make a group; Chris is in Christopher's and Christine's)."""
    found: dict[str, list[int]] = {}
    formal_names = list(dict.fromkeys([*SHORT_FORMS, *EXTRA_SHORT_FORMS]))
    for group, formal in enumerate(formal_names):
        members = {formal, *SHORT_FORMS.get(formal, ()), *EXTRA_SHORT_FORMS.get(formal, ())}
        for name in members:
            found.setdefault(name, []).append(group)
    return found


def equivalent_names() -> Iterator[tuple[str, str]]:
    """Every (formal, short) and (short, short) pair of one forename, from both tables."""
    for table in (SHORT_FORMS, EXTRA_SHORT_FORMS):
        for formal, forms in table.items():
            group = [formal, *forms, *EXTRA_SHORT_FORMS.get(formal, ())]
            for i, a in enumerate(group):
                for b in group[i + 1 :]:
                    yield a, b


@functools.cache
def _groups_by_key() -> dict[str, frozenset[int]]:
    """Match key (upper case, accents folded) of each forename in the tables -> its groups."""
    found: dict[str, set[int]] = {}
    names = pd.Series(list(groups()))
    for key, ids in zip(match_key(names), groups().values(), strict=True):
        if isinstance(key, str):
            found.setdefault(key, set()).update(ids)
    return {k: frozenset(v) for k, v in found.items()}


def same_forename(key: str) -> frozenset[str]:
    """Match keys of every forename sharing a short-form group with this match key (Bill:
    William, Will, Billy), the key itself included; `care-etl find --similar` looks these up."""
    groups = _groups_by_key().get(key, frozenset())
    return frozenset({key, *(k for k, ids in _groups_by_key().items() if ids & groups)})


def _groups_near(key: str) -> frozenset[int]:
    """Groups of the known forenames within one typing error (OSA distance) of `key`."""
    table = _groups_by_key()
    if key in table:
        return table[key]
    near: set[int] = set()
    if len(key) >= 3:  # one error in a two-letter name could make any other
        for name, ids in table.items():
            if abs(len(name) - len(key)) <= 1 and OSA.distance(key, name) <= 1:
                near.update(ids)
    return frozenset(near)


def one_forename(first: str, second: str) -> bool:
    """Whether two forename match keys are one name written two ways: within one typing
    error of each other, or each within one typing error of a form of one short-form group
    ("SUUE" is Sue mistyped, Susan's short form; "TMO" is Tom; "ROOBERT" is Robert, Bob).

    Twins are given two names, not one name written two ways: this is the evidence that
    lets the twin rule tell a typed short form from a sibling."""
    first, second = first.split(" ")[0], second.split(" ")[0]
    if OSA.distance(first, second) <= 1:
        return True
    if OSA.distance(_as_scanned(first), _as_scanned(second)) <= 1:
        return True
    return bool(_groups_near(first) & _groups_near(second))


#: Letters a scan reads one for another ("lsabeIla" for Isabella: l and I), and the pair
#: of letters read as one (rn as m), each written as one of them.
_SCAN_LETTERS = str.maketrans({"L": "I"})
_SCAN_PAIRS = (("RN", "M"), ("VV", "W"))


def _as_scanned(key: str) -> str:
    """The key with the letters a scan confuses written alike: two such misreadings in one
    name are one name read twice, not a sibling's."""
    key = key.translate(_SCAN_LETTERS)
    for pair, one in _SCAN_PAIRS:
        key = key.replace(pair, one)
    return key
