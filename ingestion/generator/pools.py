"""Static sampling pools: countries, names, addresses, e-mail domains, products.

Faker is slow (tens of microseconds per call) and its output is only stable for a fixed
seed *and* call order, so every pool is drawn once per process from fixed Faker seeds and
people are then sampled from the pools with the generator's own per-person RNG. The pools do
not depend on the run seed: the same pools exist in every worker process, whichever start
method multiprocessing uses.

Names for scripts whose romanisation Faker cannot provide (Hangul, Han, Hebrew, Japanese) are
curated ``(native, latin)`` pairs, so that e-mail local parts are realistic romanisations of
the very name shown in the CRM.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# (country, weight, faker locale, currency, tax rate, utc offset hours, FX per USD)
COUNTRIES: tuple[tuple[str, float, str, str, float, int, float], ...] = (
    ("US", 0.22, "en_US", "USD", 0.0725, -5, 1.0),
    ("GB", 0.11, "en_GB", "GBP", 0.20, 0, 0.79),
    ("KR", 0.14, "ko_KR", "KRW", 0.10, 9, 1350.0),
    ("CN", 0.10, "zh_CN", "CNY", 0.13, 8, 7.2),
    ("IL", 0.08, "he_IL", "ILS", 0.17, 2, 3.7),
    ("LT", 0.08, "lt_LT", "EUR", 0.21, 2, 0.92),
    ("DE", 0.10, "de_DE", "EUR", 0.19, 1, 0.92),
    ("JP", 0.09, "ja_JP", "JPY", 0.10, 9, 150.0),
    ("BR", 0.08, "pt_BR", "BRL", 0.17, -3, 5.0),
)
COUNTRY_CODES = tuple(c[0] for c in COUNTRIES)
COUNTRY_WEIGHTS = tuple(c[1] for c in COUNTRIES)
CURRENCY = {c[0]: c[3] for c in COUNTRIES}
TAX_RATE = {c[0]: c[4] for c in COUNTRIES}
UTC_OFFSET_H = {c[0]: c[5] for c in COUNTRIES}
FX = {c[0]: c[6] for c in COUNTRIES}
ZERO_DECIMAL = {"KRW", "JPY"}

_KR_FIRST = (
    ("서연", "Seoyeon"),
    ("민준", "Minjun"),
    ("지우", "Jiwoo"),
    ("서준", "Seojun"),
    ("하은", "Haeun"),
    ("도윤", "Doyoon"),
    ("지민", "Jimin"),
    ("예준", "Yejun"),
    ("수빈", "Subin"),
    ("현우", "Hyunwoo"),
    ("지훈", "Jihoon"),
    ("유진", "Yujin"),
    ("민서", "Minseo"),
    ("채원", "Chaewon"),
    ("은지", "Eunji"),
    ("성민", "Sungmin"),
    ("영희", "Younghee"),
    ("철수", "Cheolsu"),
    ("지영", "Jiyoung"),
    ("동현", "Donghyun"),
    ("혜진", "Hyejin"),
    ("준호", "Junho"),
    ("소연", "Soyeon"),
    ("태윤", "Taeyoon"),
)
_KR_LAST = (
    ("김", "Kim"),
    ("이", "Lee"),
    ("박", "Park"),
    ("최", "Choi"),
    ("정", "Jung"),
    ("강", "Kang"),
    ("조", "Cho"),
    ("윤", "Yoon"),
    ("장", "Jang"),
    ("임", "Lim"),
    ("한", "Han"),
    ("오", "Oh"),
    ("서", "Seo"),
    ("신", "Shin"),
    ("권", "Kwon"),
    ("황", "Hwang"),
    ("안", "Ahn"),
    ("송", "Song"),
)
_CN_FIRST = (
    ("伟", "Wei"),
    ("芳", "Fang"),
    ("娜", "Na"),
    ("秀英", "Xiuying"),
    ("敏", "Min"),
    ("静", "Jing"),
    ("丽", "Li"),
    ("强", "Qiang"),
    ("磊", "Lei"),
    ("军", "Jun"),
    ("洋", "Yang"),
    ("勇", "Yong"),
    ("艳", "Yan"),
    ("杰", "Jie"),
    ("娟", "Juan"),
    ("涛", "Tao"),
    ("明", "Ming"),
    ("超", "Chao"),
    ("秀兰", "Xiulan"),
    ("霞", "Xia"),
    ("浩然", "Haoran"),
    ("子轩", "Zixuan"),
    ("雨涵", "Yuhan"),
    ("梓涵", "Zihan"),
)
_CN_LAST = (
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("黄", "Huang"),
    ("赵", "Zhao"),
    ("吴", "Wu"),
    ("周", "Zhou"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("马", "Ma"),
    ("朱", "Zhu"),
    ("胡", "Hu"),
    ("郭", "Guo"),
    ("何", "He"),
    ("高", "Gao"),
    ("林", "Lin"),
    ("罗", "Luo"),
)
_IL_FIRST = (
    ("דוד", "David"),
    ("יוסף", "Yosef"),
    ("משה", "Moshe"),
    ("אברהם", "Avraham"),
    ("יעקב", "Yaakov"),
    ("נועה", "Noa"),
    ("שרה", "Sarah"),
    ("מיכל", "Michal"),
    ("תמר", "Tamar"),
    ("רחל", "Rachel"),
    ("אורי", "Uri"),
    ("יונתן", "Yonatan"),
    ("איתי", "Itai"),
    ("עומר", "Omer"),
    ("מאיה", "Maya"),
    ("יעל", "Yael"),
    ("אביגיל", "Avigail"),
    ("דניאל", "Daniel"),
    ("אריאל", "Ariel"),
    ("שירה", "Shira"),
)
_IL_LAST = (
    ("כהן", "Cohen"),
    ("לוי", "Levi"),
    ("מזרחי", "Mizrahi"),
    ("פרץ", "Peretz"),
    ("ביטון", "Biton"),
    ("דהן", "Dahan"),
    ("פרידמן", "Friedman"),
    ("אזולאי", "Azoulay"),
    ("מלכה", "Malka"),
    ("שפירא", "Shapira"),
    ("גבאי", "Gabay"),
    ("חדד", "Hadad"),
    ("אוחיון", "Ohayon"),
    ("ברק", "Barak"),
    ("גולן", "Golan"),
    ("שלום", "Shalom"),
)
_JP_FIRST = (
    ("翔太", "Shota"),
    ("陽菜", "Hina"),
    ("蓮", "Ren"),
    ("結衣", "Yui"),
    ("大翔", "Hiroto"),
    ("さくら", "Sakura"),
    ("悠真", "Yuma"),
    ("美咲", "Misaki"),
    ("健太", "Kenta"),
    ("直子", "Naoko"),
    ("拓也", "Takuya"),
    ("愛", "Ai"),
    ("大輔", "Daisuke"),
    ("葵", "Aoi"),
)
_JP_LAST = (
    ("佐藤", "Sato"),
    ("鈴木", "Suzuki"),
    ("高橋", "Takahashi"),
    ("田中", "Tanaka"),
    ("伊藤", "Ito"),
    ("渡辺", "Watanabe"),
    ("山本", "Yamamoto"),
    ("中村", "Nakamura"),
    ("小林", "Kobayashi"),
    ("加藤", "Kato"),
    ("吉田", "Yoshida"),
    ("山田", "Yamada"),
)
_CURATED = {
    "KR": (_KR_FIRST, _KR_LAST),
    "CN": (_CN_FIRST, _CN_LAST),
    "IL": (_IL_FIRST, _IL_LAST),
    "JP": (_JP_FIRST, _JP_LAST),
}

# Addresses for locales where Faker's address provider is missing or falls back to English.
_LT_STREETS = (
    "Gedimino pr.",
    "Vilniaus g.",
    "Laisvės al.",
    "Žalgirio g.",
    "Šeimyniškių g.",
    "Ąžuolyno g.",
    "Kęstučio g.",
    "Savanorių pr.",
    "Ukmergės g.",
    "Šilutės pl.",
    "Taikos pr.",
    "Žirmūnų g.",
    "Pylimo g.",
    "Antakalnio g.",
)
_LT_CITIES = ("Vilnius", "Kaunas", "Klaipėda", "Šiauliai", "Panevėžys", "Alytus", "Marijampolė")
_JP_STREETS = ("神南", "道玄坂", "丸の内", "梅田", "栄", "天神", "大通西", "元町", "本町", "中央")
_JP_CITIES = (
    "東京都渋谷区",
    "東京都千代田区",
    "大阪市北区",
    "名古屋市中区",
    "福岡市中央区",
    "札幌市中央区",
    "横浜市中区",
    "神戸市中央区",
)
_US_STATES = ("CA", "NY", "TX", "WA", "IL", "MA", "FL", "GA", "CO", "AZ", "OR", "NV")

NICKNAMES = {
    "Robert": "Bob",
    "William": "Bill",
    "Richard": "Dick",
    "James": "Jim",
    "John": "Jack",
    "Michael": "Mike",
    "Elizabeth": "Liz",
    "Katherine": "Kate",
    "Catherine": "Cathy",
    "Thomas": "Tom",
    "Joseph": "Joe",
    "Daniel": "Dan",
    "Christopher": "Chris",
    "Jennifer": "Jen",
    "Margaret": "Peggy",
    "Patricia": "Pat",
    "Anthony": "Tony",
    "Matthew": "Matt",
    "Andrew": "Andy",
    "Steven": "Steve",
    "Jessica": "Jess",
    "Rebecca": "Becky",
    "Samuel": "Sam",
    "Benjamin": "Ben",
    "Edward": "Ed",
    "Susan": "Sue",
    "Alexander": "Alex",
    "Nicholas": "Nick",
    "Jonathan": "Jon",
    "Deborah": "Debbie",
}

EMAIL_DOMAINS = {
    "US": ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com"),
    "GB": ("gmail.com", "btinternet.com", "outlook.com", "yahoo.co.uk"),
    "KR": ("naver.com", "daum.net", "gmail.com", "kakao.com"),
    "CN": ("qq.com", "163.com", "126.com", "gmail.com"),
    "IL": ("gmail.com", "walla.co.il", "outlook.com"),
    "LT": ("gmail.com", "one.lt", "inbox.lt", "yahoo.com"),
    "DE": ("gmail.com", "web.de", "gmx.de", "t-online.de"),
    "JP": ("gmail.com", "yahoo.co.jp", "docomo.ne.jp", "icloud.com"),
    "BR": ("gmail.com", "uol.com.br", "hotmail.com", "bol.com.br"),
}

COMPANY_STEMS = (
    "acme-corp",
    "globex",
    "initech",
    "umbrella-labs",
    "hooli",
    "stark-ind",
    "wayne-ent",
    "wonka-foods",
    "tyrell-sys",
    "cyberdyne",
    "soylent",
    "vandelay",
    "dunder-paper",
    "oceanic-air",
    "massive-dyn",
    "gringotts",
    "nakatomi",
    "blue-sun",
)
COMPANY_INBOX_LOCALS = ("info", "orders", "office", "purchasing", "admin")

# (product_id, sku, title, USD price, category)
_PRODUCTS: tuple[tuple[str, str, float, str], ...] = (
    ("COF-BEAN-1", "Colombia Coffee Beans 1kg", 24.0, "coffee"),
    ("COF-BEAN-2", "Ethiopia Coffee Beans 250g", 14.0, "coffee"),
    ("COF-GRND-1", "Burr Coffee Grinder", 89.0, "coffee"),
    ("COF-FLTR-1", "Paper Filters x100", 6.0, "coffee"),
    ("COF-DRIP-1", "Pour-over Dripper", 29.0, "coffee"),
    ("MUG-01", "Stoneware Mug", 16.0, "kitchen"),
    ("MUG-02", "Travel Mug", 22.0, "kitchen"),
    ("KTL-01", "Gooseneck Kettle", 59.0, "kitchen"),
    ("TEA-GRN-1", "Sencha Green Tea", 12.0, "tea"),
    ("TEA-BLK-1", "Assam Black Tea", 11.0, "tea"),
    ("TEA-POT-1", "Glass Teapot", 34.0, "tea"),
    ("TEA-INF-1", "Tea Infuser", 8.0, "tea"),
    ("YOG-MAT-1", "Yoga Mat", 45.0, "fitness"),
    ("YOG-BLK-1", "Yoga Block", 15.0, "fitness"),
    ("YOG-STR-1", "Yoga Strap", 9.0, "fitness"),
    ("BTL-01", "Insulated Bottle", 28.0, "fitness"),
    ("RUN-SHO-1", "Running Shoes", 120.0, "fitness"),
    ("RUN-SCK-1", "Running Socks 3-pack", 18.0, "fitness"),
    ("HDP-01", "Wireless Headphones", 149.0, "audio"),
    ("HDP-CSE-1", "Headphone Case", 19.0, "audio"),
    ("SPK-01", "Bluetooth Speaker", 79.0, "audio"),
    ("CBL-USB-C", "USB-C Cable 2m", 12.0, "audio"),
    ("CHG-01", "65W Charger", 39.0, "audio"),
    ("NTB-A5", "A5 Notebook", 9.0, "stationery"),
    ("PEN-FNT-1", "Fountain Pen", 49.0, "stationery"),
    ("INK-01", "Ink Bottle", 14.0, "stationery"),
    ("PLN-2025", "Weekly Planner", 21.0, "stationery"),
    ("BAG-TOTE", "Canvas Tote Bag", 25.0, "bags"),
    ("BAG-BPK-1", "Commuter Backpack", 95.0, "bags"),
    ("BAG-LAP-1", "Laptop Sleeve", 35.0, "bags"),
    ("SKN-CLN-1", "Gentle Cleanser", 18.0, "skincare"),
    ("SKN-TON-1", "Hydrating Toner", 22.0, "skincare"),
    ("SKN-SER-1", "Vitamin C Serum", 38.0, "skincare"),
    ("SKN-SUN-1", "Sunscreen SPF50", 19.0, "skincare"),
    ("SKN-MST-1", "Daily Moisturiser", 26.0, "skincare"),
    ("CND-01", "Soy Candle Cedar", 24.0, "home"),
    ("CND-02", "Soy Candle Lavender", 24.0, "home"),
    ("BLK-01", "Wool Throw Blanket", 89.0, "home"),
    ("PLW-01", "Linen Cushion Cover", 29.0, "home"),
    ("PLT-01", "Ceramic Planter", 32.0, "home"),
    ("PLT-SOI-1", "Potting Mix 5L", 11.0, "home"),
    ("TOY-PZL-1", "1000-piece Puzzle", 27.0, "games"),
    ("TOY-CRD-1", "Card Game", 19.0, "games"),
    ("TOY-BRD-1", "Strategy Board Game", 55.0, "games"),
    ("CHO-DRK-1", "Dark Chocolate Bar", 5.0, "food"),
    ("CHO-BOX-1", "Praline Gift Box", 32.0, "food"),
    ("HNY-01", "Wildflower Honey", 13.0, "food"),
    ("OIL-OLV-1", "Extra Virgin Olive Oil", 21.0, "food"),
    ("GFT-CRD-50", "Gift Card 50", 50.0, "gift"),
    ("GFT-WRP-1", "Gift Wrapping", 4.0, "gift"),
)


@dataclass(frozen=True)
class Product:
    """One catalogue item; ``prices`` holds the display price per currency as a string."""

    product_id: int
    sku: str
    title: str
    category: str
    prices: dict[str, float]


def _local_price(usd: float, currency: str, fx: float) -> float:
    """Round a converted price the way shops do: whole hundreds for KRW, tens for JPY."""
    value = usd * fx
    if currency == "KRW":
        return float(round(value / 100.0) * 100)
    if currency == "JPY":
        return float(round(value / 10.0) * 10)
    return round(round(value) - 0.01, 2) if value >= 2 else round(value, 2)


@lru_cache(maxsize=1)
def products() -> tuple[Product, ...]:
    """The ~50-item catalogue with prices in every shop currency."""
    out = []
    fx_by_cur = {CURRENCY[c]: FX[c] for c in COUNTRY_CODES}
    for i, (sku, title, usd, cat) in enumerate(_PRODUCTS):
        prices = {cur: _local_price(usd, cur, fx) for cur, fx in fx_by_cur.items()}
        out.append(Product(7_300_000_000 + 1_013 * i, sku, title, cat, prices))
    return tuple(out)


@lru_cache(maxsize=1)
def products_by_category() -> dict[str, tuple[int, ...]]:
    """Indices into :func:`products` per category: co-purchases come from one category."""
    cats: dict[str, list[int]] = {}
    for i, p in enumerate(products()):
        cats.setdefault(p.category, []).append(i)
    return {k: tuple(v) for k, v in cats.items()}


def ascii_fold(text: str) -> str:
    """Strip diacritics (Žalgiris -> Zalgiris) for romanised e-mail local parts."""
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    ).replace("ß", "ss")


@dataclass(frozen=True)
class LocalePool:
    """Everything sampled per country: name pairs, streets, cities, postcodes."""

    first: tuple[tuple[str, str], ...]  # (native, latin)
    last: tuple[tuple[str, str], ...]
    streets: tuple[str, ...]
    cities: tuple[str, ...]
    postcodes: tuple[str, ...]
    states: tuple[str, ...]


def _faker_pool(country: str, locale: str) -> LocalePool:
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(20_250_101 + COUNTRY_CODES.index(country))
    if country in _CURATED:
        first, last = _CURATED[country]
    else:
        firsts = sorted({fake.first_name() for _ in range(400)})
        lasts = sorted({fake.last_name() for _ in range(300)})
        if country in ("US", "GB"):  # make sure nickname-able names exist
            firsts = sorted(set(firsts) | set(list(NICKNAMES)[:12]))
        first = tuple((f, ascii_fold(f)) for f in firsts if " " not in f)
        last = tuple((s, ascii_fold(s)) for s in lasts if " " not in s)
    if country == "LT":
        streets = tuple(
            f"{_LT_STREETS[i % len(_LT_STREETS)]} {1 + (i * 7) % 120}" for i in range(200)
        )
        cities = _LT_CITIES
        postcodes = tuple(f"LT-{10000 + (i * 3571) % 89999:05d}" for i in range(200))
    elif country == "JP":
        streets = tuple(
            f"{_JP_STREETS[i % len(_JP_STREETS)]}{1 + i % 5}-{1 + (i * 3) % 20}-{1 + i % 9}"
            for i in range(200)
        )
        cities = _JP_CITIES
        postcodes = tuple(fake.postcode() for _ in range(200))
    else:
        # GB "Flat 5\nMews": one line only, a record must never span lines
        streets = tuple(fake.street_address().replace("\n", ", ") for _ in range(300))
        cities = tuple(sorted({fake.city() for _ in range(120)}))
        postcodes = tuple(fake.postcode() for _ in range(300))
    states = _US_STATES if country == "US" else ("",)
    return LocalePool(first, last, streets, cities, postcodes, states)


@lru_cache(maxsize=1)
def locale_pools() -> dict[str, LocalePool]:
    """Build (once per process) the name/address pools of every country."""
    return {c[0]: _faker_pool(c[0], c[2]) for c in COUNTRIES}
