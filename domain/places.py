"""The demo places registry: the preset places the demo chat page and the H5 page offer.

The demo data set (`storage/seed.py`) guarantees open stations near each, the pages list them with their
translated labels, and `yizhan demo` hands them to the chat page. Adding a place means adding a row here
and translating its label in the catalogues.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from domain.text import N_

__all__ = ["DEMO_PLACE", "DEMO_PLACES", "DemoPlace"]


@dataclass(frozen=True, slots=True)
class DemoPlace:
    key: str
    #: English msgid; the catalogues translate it.
    label: str
    #: WGS-84.
    lat: float
    lon: float
    #: The city (GeoNames name and admin1 code) and district the demo stations around it belong to.
    city: tuple[str, str]
    district: str


DEMO_PLACES: tuple[DemoPlace, ...] = (
    DemoPlace("guangzhou_tianhe", N_("Guangzhou Tianhe"), 23.1291, 113.3245, ("Guangzhou", "30"), "天河"),
    DemoPlace("shenzhen_futian", N_("Shenzhen Futian"), 22.5431, 114.0579, ("Shenzhen", "30"), "福田"),
    DemoPlace("beijing_chaoyang", N_("Beijing Chaoyang"), 39.9219, 116.4436, ("Beijing", "22"), "朝阳"),
    DemoPlace(
        "shanghai_peoples_square",
        N_("Shanghai People's Square"),
        31.2304,
        121.4737,
        ("Shanghai", "23"),
        "黄浦",
    ),
    DemoPlace("chengdu_chunxi_road", N_("Chengdu Chunxi Road"), 30.6570, 104.0800, ("Chengdu", "32"), "锦江"),
    DemoPlace("wuhan", N_("Wuhan"), 30.5928, 114.3055, ("Wuhan", "12"), "江岸"),
)
#: key → DemoPlace.
DEMO_PLACE: MappingProxyType[str, DemoPlace] = MappingProxyType({place.key: place for place in DEMO_PLACES})
