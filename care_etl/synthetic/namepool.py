"""The name pools of the synthetic borough, embedded so the generator needs no network or data.

A London borough's records mix naming traditions, and each tradition brings its own trouble
for linkage: accents (Zoë, Seán, José), gendered surnames (Kowalski/Kowalska), family members
with different surnames (Singh/Kaur, Begum), surname-first conventions, apostrophes (O'Brien)
and Mac/Mc spellings. Lists are ordered most common first: `pick` weights them by rank, so
common names repeat as they do in real registers (which makes namesakes happen naturally).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Names born before this year come from the `old` lists, later births from the `young` ones.
YOUNG_FROM_YEAR = 1980


@dataclass(frozen=True)
class Origin:
    """One naming tradition: who is called what, and how their names tend to be misrecorded."""

    key: str
    weight: float
    male_old: tuple[str, ...]
    female_old: tuple[str, ...]
    surnames: tuple[str, ...]
    male_young: tuple[str, ...] = ()
    female_young: tuple[str, ...] = ()
    #: Share of people with a middle name.
    middle_name_rate: float = 0.2
    #: Written surname first at home, so forename and surname get swapped more often.
    surname_first: bool = False
    #: Ethnicity categories (social care) with weights; 'Not stated' is added by the writer.
    ethnicity: tuple[tuple[str, float], ...] = ()

    def forenames(self, sex: str, birth_year: int) -> tuple[str, ...]:
        young = birth_year >= YOUNG_FROM_YEAR
        if sex == "M":
            return self.male_young if young and self.male_young else self.male_old
        return self.female_young if young and self.female_young else self.female_old


# The name lists stay compact, one naming tradition to a screen.
# fmt: off
_BRITISH = Origin(
    key="british",
    weight=0.5,
    male_old=(
        "John", "David", "Michael", "Peter", "Robert", "William", "James", "Richard", "Thomas",
        "Stephen", "Paul", "Anthony", "George", "Christopher", "Edward", "Charles", "Kenneth",
        "Ronald", "Alan", "Brian", "Andrew", "Mark", "Frederick", "Albert", "Arthur", "Stanley",
        "Raymond", "Dennis", "Leonard", "Harold", "Gordon", "Keith", "Alexander", "Joseph",
        "Francis", "Nicholas", "Timothy", "Gregory", "Jonathan", "Alfred", "Philip", "Graham",
        "Trevor", "Colin", "Derek", "Roger", "Geoffrey", "Malcolm", "Nigel",
    ),
    female_old=(
        "Margaret", "Mary", "Elizabeth", "Patricia", "Susan", "Sarah", "Barbara", "Dorothy", "Joan",
        "Jean", "Sheila", "Brenda", "Christine", "Janet", "Linda", "Valerie", "Maureen", "Irene",
        "Doreen", "Kathleen", "Catherine", "Pauline", "Rosemary", "Jacqueline", "Deborah", "Karen",
        "Julie", "Gillian", "Helen", "Ann", "Anne", "Frances", "Victoria", "Alexandra", "Jennifer",
        "Rebecca", "Carol", "Wendy", "Hilda", "Gladys", "Marjorie", "Beryl", "Renée", "Noëlle",
    ),
    male_young=(
        "Oliver", "Jack", "Harry", "George", "Thomas", "James", "William", "Daniel", "Samuel",
        "Joshua", "Noah", "Charlie", "Jacob", "Alfie", "Freddie", "Leo", "Oscar", "Alexander",
        "Matthew", "Benjamin", "Ethan", "Liam", "Callum", "Ryan", "Jamie", "Connor", "Luke",
        "Nathan", "Dylan", "Lewis", "Jake", "Max", "Edward", "Robert", "Christopher", "Michael",
        "Nicholas", "Zachary", "Archie", "Henry", "Theo", "Joseph", "Stephen",
    ),
    female_young=(
        "Olivia", "Amelia", "Emily", "Sophie", "Jessica", "Grace", "Isla", "Ava", "Chloe", "Ella",
        "Lily", "Mia", "Hannah", "Megan", "Charlotte", "Lucy", "Ellie", "Freya", "Poppy", "Evie",
        "Isabella", "Katie", "Lauren", "Amy", "Rebecca", "Emma", "Laura", "Abigail", "Elizabeth",
        "Victoria", "Alexandra", "Jennifer", "Samantha", "Zoë", "Chloë", "Zoe", "Margaret",
        "Catherine", "Sarah", "Phoebe", "Matilda", "Daisy",
    ),
    surnames=(
        "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
        "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards",
        "Hughes", "Green", "Hall", "Lewis", "Harris", "Clarke", "Jackson", "Wood", "Turner",
        "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King", "Baker",
        "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis", "Parker",
        "Price", "Bennett", "Young", "Griffiths", "Mitchell", "Cook", "Carter", "Richardson",
        "Bailey", "Collins", "Bell", "Shaw", "Miller", "Cox", "Richards", "Marshall", "Anderson",
        "Simpson", "Ellis", "Adams", "Wilkinson", "Foster", "Chapman", "Powell", "Webb", "Rogers",
        "Gray", "Mason", "Hunt", "Matthews", "Owen", "Palmer", "Holmes", "Mills", "Barnes",
        "Knight", "Lloyd", "Butler", "Russell", "MacDonald", "McDonald", "MacKenzie", "McKenzie",
        "MacLeod", "McLeod", "McIntyre", "Fraser", "Stewart", "Hamilton-Smith", "Jones-Evans",
        "Ashby-Clarke", "Fox-Davies", "Rhys Jones", "Vaughan Williams", "Bryce Morgan", "D'Arcy",
        "Le Page", "St John",
    ),
    middle_name_rate=0.55,
    ethnicity=(("White - British", 0.92), ("White - Other", 0.03), ("Mixed - Other", 0.05),),
)

_IRISH = Origin(
    key="irish",
    weight=0.06,
    male_old=(
        "Patrick", "Seán", "Michael", "John", "Declan", "Ciarán", "Pádraig", "Dónal", "Eoin",
        "Liam", "Kevin", "Brendan", "Séamus", "Cormac", "Niall", "Conor", "Brian", "Tadhg",
    ),
    female_old=(
        "Mary", "Siobhán", "Aoife", "Niamh", "Róisín", "Orla", "Bridget", "Kathleen", "Maeve",
        "Sinéad", "Clodagh", "Eileen", "Nuala", "Gráinne", "Áine", "Deirdre",
    ),
    surnames=(
        "Murphy", "Kelly", "O'Brien", "O'Sullivan", "Walsh", "O'Connor", "McCarthy", "MacCarthy",
        "Byrne", "Ryan", "O'Neill", "Doyle", "Gallagher", "Kennedy", "Lynch", "Quinn", "O'Reilly",
        "Brennan", "Fitzgerald", "McLaughlin", "Ó Briain", "Mac Giolla", "Nolan", "Keane", "Dunne",
        "Flanagan", "Sheehan", "O'Donnell",
    ),
    middle_name_rate=0.5,
    ethnicity=(("White - Irish", 0.95), ("White - Other", 0.05),),
)

_SOUTH_ASIAN_MUSLIM = Origin(
    key="south_asian_muslim",
    weight=0.07,
    male_old=(
        "Mohammed", "Muhammad", "Abdul", "Ahmed", "Ali", "Imran", "Tariq", "Yusuf", "Hassan",
        "Shahid", "Rashid", "Faisal", "Kamran", "Bilal", "Omar", "Ibrahim", "Mohammad", "Abdullah",
        "Zahid", "Asif", "Rahim", "Jamal",
    ),
    female_old=(
        "Fatima", "Aisha", "Ayesha", "Nusrat", "Shabana", "Sana", "Rukhsana", "Parveen", "Nazia",
        "Farzana", "Yasmin", "Sadia", "Amina", "Salma", "Hafsa", "Maryam", "Zainab", "Rubina",
        "Shamima", "Nasreen",
    ),
    surnames=(
        "Khan", "Ahmed", "Hussain", "Ali", "Rahman", "Islam", "Miah", "Uddin", "Chowdhury", "Iqbal",
        "Akhtar", "Malik", "Choudhury", "Hossain", "Mahmood", "Qureshi", "Butt", "Raza", "Haque",
        "Siddiqui", "Sheikh", "Mirza",
    ),
    middle_name_rate=0.15,
    surname_first=True,
    ethnicity=(("Asian or Asian British - Pakistani", 0.45), ("Asian or Asian British - Bangladeshi", 0.45), ("Asian or Asian British - Other", 0.1),),
)

_SOUTH_ASIAN_INDIAN = Origin(
    key="south_asian_indian",
    weight=0.05,
    male_old=(
        "Rajesh", "Sanjay", "Arjun", "Harpreet", "Gurpreet", "Amit", "Rahul", "Vijay", "Sunil",
        "Anil", "Deepak", "Rohan", "Ravi", "Manoj", "Kiran", "Jaswinder", "Sandeep", "Vikram",
        "Nikhil", "Aditya",
    ),
    female_old=(
        "Priya", "Sunita", "Anjali", "Harpreet", "Gurpreet", "Pooja", "Neha", "Kavita", "Deepa",
        "Meera", "Asha", "Simran", "Jaspreet", "Rupinder", "Nisha", "Divya", "Lakshmi", "Shalini",
    ),
    surnames=(
        "Patel", "Singh", "Shah", "Sharma", "Gupta", "Mehta", "Desai", "Joshi", "Kumar", "Sandhu",
        "Gill", "Dhillon", "Parmar", "Chauhan", "Mistry", "Pillai", "Nair", "D'Souza", "Fernandes",
        "Rao",
    ),
    middle_name_rate=0.25,
    surname_first=True,
    ethnicity=(("Asian or Asian British - Indian", 0.95), ("Asian or Asian British - Other", 0.05),),
)

_POLISH = Origin(
    key="polish",
    weight=0.05,
    male_old=(
        "Piotr", "Krzysztof", "Andrzej", "Tomasz", "Paweł", "Michał", "Marcin", "Łukasz", "Jakub",
        "Wojciech", "Józef", "Kamil", "Mateusz", "Grzegorz", "Marek", "Adam", "Aleksander",
        "Szymon",
    ),
    female_old=(
        "Anna", "Katarzyna", "Małgorzata", "Agnieszka", "Magdalena", "Joanna", "Ewa", "Monika",
        "Zofia", "Barbara", "Aleksandra", "Natalia", "Karolina", "Marta", "Dorota", "Justyna",
        "Beata", "Julia",
    ),
    surnames=(
        "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski",
        "Zieliński", "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur",
        "Kwiatkowski", "Krawczyk", "Piotrowski", "Grabowski", "Zając", "Pawlak", "Michalski",
    ),
    middle_name_rate=0.3,
    ethnicity=(("White - Other", 0.95), ("Not stated", 0.05),),
)

_WEST_AFRICAN = Origin(
    key="west_african",
    weight=0.07,
    male_old=(
        "Oluwaseun", "Adebayo", "Chinedu", "Emeka", "Kwame", "Kofi", "Yaw", "Olumide", "Babatunde",
        "Chukwuemeka", "Tunde", "Kwabena", "Ifeanyi", "Femi", "Segun", "Obinna", "Kehinde", "Taiwo",
        "Samuel", "Daniel", "Emmanuel", "Joseph",
    ),
    female_old=(
        "Adaeze", "Chiamaka", "Funmilayo", "Ngozi", "Abena", "Ama", "Folake", "Temitope",
        "Blessing", "Grace", "Oluwakemi", "Yetunde", "Chioma", "Efua", "Akosua", "Bukola",
        "Kehinde", "Taiwo", "Esther", "Precious",
    ),
    surnames=(
        "Okafor", "Adeyemi", "Okonkwo", "Mensah", "Asante", "Boateng", "Oyelaran", "Adebayo", "Eze",
        "Nwosu", "Owusu", "Osei", "Ogunleye", "Balogun", "Adeleke", "Oladipo", "Akinola",
        "Nwachukwu", "Appiah", "Danso", "Ogunbiyi", "Obi",
    ),
    middle_name_rate=0.5,
    ethnicity=(("Black or Black British - African", 0.95), ("Mixed - Other", 0.05),),
)

_CARIBBEAN = Origin(
    key="caribbean",
    weight=0.06,
    male_old=(
        "Delroy", "Winston", "Desmond", "Errol", "Leroy", "Clive", "Lloyd", "Everton", "Trevor",
        "Neville", "Carlton", "Wesley", "Marcus", "Jermaine", "Tyrone", "Andre", "Dwayne", "Kareem",
    ),
    female_old=(
        "Marcia", "Beverley", "Claudette", "Hyacinth", "Pauline", "Sonia", "Yvonne", "Merle",
        "Lorna", "Jacqueline", "Shanice", "Keisha", "Tanisha", "Chantelle", "Monique", "Simone",
    ),
    male_young=(
        "Jermaine", "Tyrone", "Andre", "Dwayne", "Kareem", "Malik", "Tyrese", "Jaden", "Kai",
        "Reuben", "Elijah", "Isaiah", "Joshua", "Nathaniel",
    ),
    female_young=(
        "Shanice", "Keisha", "Tanisha", "Chantelle", "Monique", "Simone", "Aaliyah", "Jada",
        "Kiara", "Imani", "Nia", "Tiana", "Naomi",
    ),
    surnames=(
        "Campbell", "Brown", "Williams", "Thompson", "Clarke", "Francis", "Reid", "Grant", "Henry",
        "Samuels", "Barnes", "Bailey", "Gordon", "Morrison", "Stephenson", "Forbes", "McKenzie",
        "Facey", "Bryan", "Lawrence", "Nembhard", "Wint",
    ),
    middle_name_rate=0.5,
    ethnicity=(("Black or Black British - Caribbean", 0.9), ("Mixed - White and Black Caribbean", 0.1),),
)

_TURKISH = Origin(
    key="turkish",
    weight=0.05,
    male_old=(
        "Mehmet", "Mustafa", "Ahmet", "Emre", "Burak", "Hüseyin", "Hasan", "İbrahim", "Murat",
        "Ömer", "Yusuf", "Kemal", "Serkan", "Cem", "Osman", "Erkan",
    ),
    female_old=(
        "Ayşe", "Fatma", "Elif", "Zeynep", "Emine", "Hatice", "Meryem", "Özlem", "Gül", "Sevgi",
        "Derya", "Aylin", "Büşra", "Esra", "Merve", "Dilek",
    ),
    surnames=(
        "Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Öztürk", "Aydın", "Arslan", "Doğan",
        "Kılıç", "Aslan", "Koç", "Kurt", "Özdemir", "Polat", "Erdoğan", "Güneş",
    ),
    middle_name_rate=0.1,
    ethnicity=(("White - Other", 0.6), ("Other ethnic group", 0.3), ("Not stated", 0.1),),
)

_CHINESE = Origin(
    key="chinese",
    weight=0.03,
    male_old=(
        "Wei", "Jun", "Ming", "Hao", "Jian", "Lei", "Xiaoming", "Chen", "Kai", "Yong", "Zhiwei",
        "Hong", "Kwok", "Wai", "Ka Ho",
    ),
    female_old=(
        "Jing", "Li", "Hui", "Mei", "Yan", "Ling", "Xiu", "Fang", "Xiaoling", "Ying", "Na", "Wing",
        "Mei Ling", "Siu",
    ),
    surnames=(
        "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Lin", "Chan",
        "Wong", "Cheung", "Lam", "Ng", "Ho", "Leung",
    ),
    middle_name_rate=0.05,
    surname_first=True,
    ethnicity=(("Chinese", 0.95), ("Asian or Asian British - Other", 0.05),),
)

_IBERIAN = Origin(
    key="iberian",
    weight=0.03,
    male_old=(
        "José", "João", "António", "Francisco", "Manuel", "Carlos", "Luís", "Miguel", "Pedro",
        "Javier", "Alejandro", "Gonçalo", "Rúben", "Raúl",
    ),
    female_old=(
        "María", "Ana", "Inês", "Beatriz", "Lucía", "Sofía", "Carmen", "Joana", "Mariana", "Raquel",
        "Teresa", "Conceição", "Mónica",
    ),
    surnames=(
        "Silva", "Santos", "Ferreira", "Pereira", "García", "Rodríguez", "Fernández", "González",
        "Martínez", "Sánchez", "Gómez", "Costa", "Oliveira", "Sousa", "Gonçalves", "Pérez", "López",
    ),
    middle_name_rate=0.4,
    ethnicity=(("White - Other", 0.85), ("Mixed - Other", 0.1), ("Not stated", 0.05),),
)

# fmt: on

#: Every naming tradition in the borough, with its share of households.
ORIGINS: tuple[Origin, ...] = (
    _BRITISH,
    _IRISH,
    _SOUTH_ASIAN_MUSLIM,
    _SOUTH_ASIAN_INDIAN,
    _POLISH,
    _WEST_AFRICAN,
    _CARIBBEAN,
    _TURKISH,
    _CHINESE,
    _IBERIAN,
)
ORIGIN_BY_KEY: dict[str, Origin] = {o.key: o for o in ORIGINS}
_ORIGIN_WEIGHTS = [o.weight for o in ORIGINS]

#: Common names given to the namesake trap: the names that collide in real registers.
COMMON_NAMES: tuple[tuple[str, str, str, str], ...] = (
    ("british", "M", "John", "Smith"),
    ("british", "M", "David", "Jones"),
    ("british", "M", "James", "Brown"),
    ("british", "F", "Sarah", "Williams"),
    ("british", "F", "Margaret", "Taylor"),
    ("south_asian_muslim", "M", "Mohammed", "Khan"),
    ("south_asian_muslim", "M", "Mohammed", "Ali"),
    ("south_asian_indian", "M", "Rajesh", "Patel"),
    ("irish", "M", "Patrick", "Murphy"),
    ("british", "M", "Michael", "Wilson"),
)


def pick(rng: random.Random, names: tuple[str, ...]) -> str:
    """A name from a rank-ordered list: the first names are several times likelier than the last."""
    n = len(names)
    # A skewed uniform draw favours low ranks, the way real name frequencies fall off.
    return names[min(n - 1, int(n * rng.random() ** 1.3))]


def pick_origin(rng: random.Random) -> Origin:
    return rng.choices(ORIGINS, weights=_ORIGIN_WEIGHTS)[0]


def feminine_surname(surname: str, origin: str) -> str:
    """Polish surnames in -ski/-cki/-dzki take -ska/-cka/-dzka for women."""
    if origin == "polish" and surname.endswith("i") and surname[-3:-1] in ("sk", "ck", "zk"):
        return surname[:-1] + "a"
    return surname


def masculine_surname(surname: str, origin: str) -> str:
    if origin == "polish" and surname.endswith("a") and surname[-3:-1] in ("sk", "ck", "zk"):
        return surname[:-1] + "i"
    return surname


def own_surname(rng: random.Random, family_surname: str, origin: str, sex: str) -> str:
    """The surname a person of this family and sex actually carries (Kaur, Begum, -ska)."""
    if sex != "F":
        if family_surname == "Kaur":
            return "Singh"
        if family_surname == "Begum":
            return rng.choice(("Miah", "Uddin", "Ahmed"))
        return masculine_surname(family_surname, origin)
    if family_surname == "Singh" and rng.random() < 0.7:
        return "Kaur"
    if origin == "south_asian_muslim" and rng.random() < 0.3:
        return "Begum"
    return feminine_surname(family_surname, origin)
