"""The amenity registry: every amenity a station can offer, in one place.

Everything else reads this table: the stable keys and their canonical order (bitmasks, exports, icons),
the Chinese labels imports accept, the bot's and the H5 page's icons and labels, the filter keyboards and
the share of stations that offer each in the synthetic data set. Adding an amenity means adding a row here
and translating its label in the catalogues; `tests/test_registries.py` holds every consumer to that.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from domain.text import N_

__all__ = ["AMENITIES", "AMENITY", "Amenity"]

#: Stations at the end of 2024, of which about 110,000 keep emergency medicines (DOMAIN.md).
_NATIONAL_COUNT = 186_100


@dataclass(frozen=True, slots=True)
class Amenity:
    key: str
    #: Shown before the label in the bot and on the page.
    icon: str
    #: English msgid; the catalogues translate it (Simplified Chinese first).
    label: str
    #: The Simplified Chinese name imports accept besides the key (the union's own wording).
    label_zh: str
    #: Share of stations offering it in the synthetic data set (`storage/seed.py`).
    seed_share: float


#: In canonical order: a new amenity goes at the end, so stored bitmasks keep their meaning.
AMENITIES: tuple[Amenity, ...] = (
    Amenity("drinking_water", "💧", N_("Drinking water"), "饮水", 0.97),
    Amenity("food_heating", "🍱", N_("Food heating"), "热饭（微波炉）", 0.70),
    Amenity("rest_area", "🪑", N_("Rest area"), "休息座椅", 0.90),
    Amenity("toilet", "🚻", N_("Toilet"), "卫生间", 0.55),
    Amenity("phone_charging", "🔌", N_("Phone charging"), "手机充电", 0.85),
    Amenity("ebike_charging", "🛵", N_("E-bike charging"), "电动车充电", 0.20),
    Amenity("first_aid", "🩹", N_("First aid kit"), "医药箱", 110_000 / _NATIONAL_COUNT),
    Amenity("umbrella", "☂️", N_("Umbrella loan"), "雨具借用", 0.45),
    Amenity("air_conditioning", "❄️", N_("Air conditioning"), "空调避暑", 0.50),
    Amenity("heating", "🔥", N_("Winter heating"), "冬季取暖", 0.35),
    Amenity("wifi", "📶", N_("Wi-Fi"), "无线上网", 0.40),
    Amenity("reading", "📚", N_("Reading corner"), "书报阅览", 0.25),
    Amenity("legal_aid", "⚖️", N_("Legal aid"), "法律援助", 0.08),
    Amenity("sewing", "🧵", N_("Sewing repairs"), "衣物缝补", 0.10),
)

#: key → Amenity.
AMENITY: MappingProxyType[str, Amenity] = MappingProxyType({a.key: a for a in AMENITIES})
