"""The tables behind the synthetic data set (`storage/seed.py`): provinces, big cities and their districts,
areas left out, roads, hosts, opening hours, amenity shares, names and phone numbers.

Data only: the generator reads these in a fixed order, so changing a table changes the data set (and the
figures measured on it).
"""

from __future__ import annotations

from typing import NamedTuple

from domain.amenities import AMENITIES
from domain.values import StationStatus

NATIONAL_COUNT = 186_100

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
MUNICIPALITIES = {
    "22": ("Beijing", "22"),
    "23": ("Shanghai", "23"),
    "28": ("Tianjin", "28"),
    "33": ("Chongqing", "33"),
}

#: Southern Grid serves these provinces; State Grid the rest (for the host of power-company stations).
SOUTHERN_GRID = {44, 45, 46, 52, 53}


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

#: GeoNames populations that are prefecture totals or plain wrong would give a town a megacity's share:
#: Wuzhong (Ningxia) is listed with 7.2 million, the town of Puyang (Zhejiang) with 3.6 million.
POPULATION_FIXES: dict[tuple[str, str], int] = {("Wuzhong", "21"): 1_400_000, ("Puyang", "02"): 100_000}

#: Coastal cities whose centre is close to the sea (or to the Hong Kong border): a tighter spread keeps
#: their stations on land.
COASTAL: frozenset[tuple[str, str]] = frozenset(
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

#: GeoNames files Macau's parishes under CN (and places of Hong Kong and Taiwan): dropped by timezone.
EXCLUDED_TIMEZONES = frozenset({"Asia/Macau", "Asia/Hong_Kong", "Asia/Taipei"})

ROADS = (
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

# --------------------------------------------------------------------------------------------------------
# Hosts, hours, amenities
# --------------------------------------------------------------------------------------------------------


class Host(NamedTuple):
    brand: str  # as it appears in the station name
    org: str  # template of the hosting organisation: {city} {city_full} {prov} {place} {power}
    hours: str  # key of TYPICAL_HOURS
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

EXTENDED_HOURS = ("Mo-Su 06:00-23:00", "Mo-Su 07:00-22:00", "Mo-Su 06:30-22:30", "Mo-Su 07:00-23:00")
DEFAULT_HOURS = (
    "Mo-Su 08:00-20:00",
    "Mo-Fr 08:30-17:30; Sa,Su 09:00-17:00",
    "Mo-Fr 09:00-17:00; PH off",
    "Mo-Su 08:00-18:00; PH 09:00-16:00",
    "Mo-Sa 08:00-19:00",
)
TYPICAL_HOURS: dict[str, tuple[str, ...]] = {
    "telecom": ("Mo-Su 09:00-21:00", "Mo-Su 08:30-20:30", "Mo-Su 09:00-18:00"),
    "bank": (
        "Mo-Fr 09:00-17:00; Sa,Su 09:00-16:00",
        "Mo-Fr 08:30-17:00; PH off",
        "Mo-Fr 09:00-17:00; Sa 09:00-12:00; PH off",
        "Mo-Su 09:00-17:00",
    ),
    "petrol": ("Mo-Su 07:00-21:00", "Mo-Su 08:00-20:00", "Mo-Su 06:30-21:30"),
    "community": (*DEFAULT_HOURS, "Mo-Su 08:00-21:00"),
    "sanitation": ("Mo-Su 05:00-20:00", "Mo-Su 04:30-19:00", "Mo-Su 05:30-21:00"),
    "mall": ("Mo-Su 10:00-22:00", "Mo-Su 09:30-22:00"),
    "government": (
        "Mo-Fr 09:00-17:00; PH off",
        "Mo-Fr 08:30-12:00,14:00-17:30; PH off",
        "Mo-Fr 08:30-17:30; Sa,Su 09:00-17:00",
    ),
    "office": ("Mo-Fr 08:30-17:30; Sa,Su 09:00-17:00", "Mo-Su 08:30-17:30", "Mo-Sa 08:30-18:00"),
    "union": DEFAULT_HOURS,
}

#: National share of stations offering each amenity: the registry's `seed_share`.
AMENITY_SHARES: dict[str, float] = {amenity.key: amenity.seed_share for amenity in AMENITIES}
#: Heating is a northern thing (central heating north of the Qinling-Huai line, about 33-35°N).
NORTH_LAT = 35.0
HEATING_NORTH_ODDS = 2.5

SUFFIXES = ("工会驿站", "爱心驿站", "户外劳动者服务站点", "暖心驿站")
SUFFIX_WEIGHTS = (0.4, 0.3, 0.2, 0.1)
STATUSES = (StationStatus.ACTIVE, StationStatus.TEMPORARILY_CLOSED, StationStatus.CLOSED)
STATUS_WEIGHTS = (0.97, 0.02, 0.01)

#: The most common surnames, most frequent first.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚"
    "邵万钱严覃武戴莫孔"
)
GIVEN_NAMES = (
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
MOBILE_SECOND = (3, 5, 8, 7, 9)
MOBILE_SECOND_WEIGHTS = (0.35, 0.25, 0.25, 0.07, 0.08)
MOBILE_SHARE = 0.6
