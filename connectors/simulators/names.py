"""Word lists for the synthetic population: ordinary names, streets and places.

Every person is an invented combination of a common first name and a common
surname; no list here describes a real person. The area is a fictional slice
of Leeds: real postcode districts, invented streets, and telephone numbers
only from the Ofcom ranges reserved for drama (0113 496 0xxx, 07700 900xxx).
"""

from __future__ import annotations

__all__ = [
    "FEMALE_NAMES",
    "FIXTURE_SURNAMES",
    "MALE_NAMES",
    "NEIGHBOURHOODS",
    "PRACTICE_PATTERNS",
    "SAINTS",
    "SERVICE_NAMES",
    "STREETS",
    "SURNAMES",
    "TOWNS",
]

FEMALE_NAMES = (
    "Olivia", "Amelia", "Isla", "Ava", "Ivy", "Freya", "Lily", "Florence", "Mia", "Willow",
    "Rosie", "Sophia", "Isabella", "Grace", "Daisy", "Sienna", "Poppy", "Elsie", "Emily",
    "Ella", "Evelyn", "Phoebe", "Sofia", "Evie", "Charlotte", "Harper", "Millie", "Matilda",
    "Maya", "Sophie", "Alice", "Emilia", "Isabelle", "Ruby", "Luna", "Maisie", "Aria",
    "Penelope", "Mila", "Bonnie", "Eva", "Hallie", "Eliza", "Ada", "Violet", "Esme", "Arabella",
    "Imogen", "Jessica", "Delilah", "Thea", "Layla", "Chloe", "Hannah", "Lucy", "Ellie",
    "Holly", "Megan", "Katie", "Lauren", "Rebecca", "Sarah", "Laura", "Emma", "Claire",
    "Joanne", "Nicola", "Rachel", "Helen", "Karen", "Susan", "Julie", "Amy", "Gemma",
)

MALE_NAMES = (
    "Noah", "Oliver", "George", "Arthur", "Muhammad", "Leo", "Harry", "Oscar", "Archie",
    "Henry", "Theodore", "Freddie", "Jack", "Charlie", "Theo", "Alfie", "Jacob", "Thomas",
    "Finley", "Arlo", "William", "Lucas", "Roman", "Tommy", "Isaac", "Teddy", "Alexander",
    "Luca", "Edward", "James", "Joshua", "Albie", "Elijah", "Max", "Mohammed", "Reuben",
    "Mason", "Sebastian", "Rory", "Jude", "Louie", "Benjamin", "Ethan", "Adam", "Hugo",
    "Joseph", "Reggie", "Ronnie", "Louis", "Frankie", "Daniel", "Samuel", "Ryan", "Liam",
    "Nathan", "Connor", "Callum", "Jamie", "Lewis", "Matthew", "David", "Paul", "Mark",
    "Andrew", "Richard", "Stephen", "Michael", "Peter", "Simon", "Gary", "Craig", "Dean",
)

SURNAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "Patel", "Khan", "Lewis", "James", "Phillips", "Mason", "Mitchell",
    "Rose", "Davis", "Rodriguez", "Cox", "Alexander", "Morris", "Lee", "Harris", "Hughes",
    "Martin", "Edwards", "Turner", "Hill", "Cooper", "Ward", "Morgan", "Baker", "Harrison",
    "Parker", "Carter", "Allen", "Bennett", "Shaw", "Holmes", "Bell", "Chapman", "Webb",
    "Cook", "Richardson", "Moore", "Young", "King", "Scott", "Hussain", "Ali", "Ahmed",
    "Begum", "Akhtar", "Singh", "Kaur", "Murphy", "Kelly", "Graham", "Marshall", "Owen",
    "Knight", "Dixon", "Lloyd", "Atkinson", "Barker", "Fletcher", "Hudson", "Kemp",
    "Lambert", "Naylor", "Pickles", "Priestley", "Sutcliffe", "Thornton", "Whitehead",
    "Barraclough", "Hirst", "Holroyd", "Ackroyd", "Crowther", "Greenwood", "Haigh", "Ibbotson",
    "Jowett", "Lister", "Marsden", "Oldroyd", "Rhodes", "Schofield", "Tattersall", "Wade",
)

# Family names kept out of SURNAMES, so each fixture child's family name (and
# so family name + date of birth) is unique in any generated population.
FIXTURE_SURNAMES = (
    "Ashdown", "Brightside", "Cobblestone", "Dunnock", "Evensong", "Fieldfare", "Goldcrest",
)

STREETS = (
    "Elm Road", "Church Lane", "Station Road", "Victoria Street", "Mill Lane", "Park Avenue",
    "Chapel Street", "Albert Terrace", "Beech Grove", "Oak Crescent", "Moor View", "Hill Top",
    "Queen Street", "King Edward Road", "Meadow Close", "Willow Drive", "Ash Grove",
    "Cherry Tree Walk", "Hawthorn Way", "Rowan Court", "Sycamore Close", "Granby Terrace",
    "Brudenell Mount", "Harehills Place", "Cardigan Lane", "Woodhouse Street", "Beckett Park",
    "Springfield Mount", "Ingram Road", "Low Green", "High Street", "Back Lane", "Brookfield Drive",
    "Fern Bank", "Primrose Hill", "Laburnum Street", "Holly Bank", "Cross Flatts Grove",
    "Nowell Crescent", "Stainbeck Avenue",
)

# Invented neighbourhood names for practices and schools.
NEIGHBOURHOODS = (
    "Highfield", "Moorfield", "Beckside", "Westbrook", "Eastgate", "Northcliffe", "Southview",
    "Parkside", "Brookside", "Greenhill", "Woodlands", "Riverside", "Hillside", "Meadowbank",
    "Springwell", "Ashfield", "Elmwood", "Fairfield", "Kirkgate", "Lowfield", "Millbrook",
    "Newlands", "Oakfield", "Redhill", "Stonegate", "Thornfield", "Underwood", "Whinfield",
)

# Towns and their postcode districts; all share Leeds' 0113 dialling code.
TOWNS = (
    ("Leeds", ("LS6", "LS7", "LS8", "LS9", "LS11", "LS12", "LS13", "LS14", "LS15", "LS16")),
    ("Otley", ("LS21",)),
    ("Wetherby", ("LS22",)),
    ("Morley", ("LS27",)),
    ("Pudsey", ("LS28",)),
    ("Garforth", ("LS25",)),
    ("Rothwell", ("LS26",)),
    ("Guiseley", ("LS20",)),
)

PRACTICE_PATTERNS = (
    "{place} Medical Centre", "{place} Surgery", "{place} Health Centre",
    "The {place} Practice", "{place} Family Practice",
)

SAINTS = ("Mary", "Peter", "Anne", "Joseph", "Bede", "Chad", "Oswald", "Hilda", "Aidan", "Paul")

# Council service kinds, the names teams go by, and whether the kind is sensitive.
SERVICE_NAMES: dict[str, tuple[tuple[str, ...], bool]] = {
    "Social care": (("Children's Social Work Service, North team",
                     "Children's Social Work Service, East team",
                     "Children's Social Work Service, South team"), False),
    "Early help": (("Early Help Hub, Inner North", "Early Help Hub, Outer East",
                    "Family Support Team"), False),
    "Youth justice": (("Youth Justice Service",), False),
    "Child and adolescent mental health": (("CAMHS Community Team",
                                            "CAMHS Eating Disorders Team"), True),
    "Sexual health": (("Young People's Sexual Health Clinic",), True),
    "Substance misuse": (("Young People's Substance Misuse Service",), True),
}
