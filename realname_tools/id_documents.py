"""Synthetic identity documents with known contents, photographed like `cards`: test material for the
document reader, generated at test time (no real document is ever stored).

Four kinds: the Chinese resident card's front (with a portrait) and back, a passport data page with a TD3
machine-readable zone and an ID card with a TD1 zone. Names, numbers and addresses are random but
well-formed (valid check characters and digits), unless `bad_checksum` asks for a wrong one. Text is set
in WenQuanYi Micro Hei (Debian's fonts-wqy-microhei; its monospaced face for the MRZ).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from server.documents import mrz, resident_card

from .cards import CardStyle, _as_printed, photographed

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
KINDS = ("cn_resident_card_front", "cn_resident_card_back", "td3_mrz", "td1_mrz")
DOCUMENT_STYLE = CardStyle(angle_deg=8.0, perspective=0.05, jpeg_quality=(60, 90), glare_strength=(30, 100), blur_sigma=(0.5, 1.1))

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉建国志宏海波晓东雪梅佳琪子涵浩然宇轩欣怡思远嘉"
ETHNICITIES = ("汉", "汉", "汉", "汉", "回", "满", "壮", "蒙古", "维吾尔", "苗", "彝", "土家", "藏")
PLACES = (  # region code, province/city, districts
    ("110101", "北京市东城区", "东华门街道"),
    ("310104", "上海市徐汇区", "漕河泾街道"),
    ("440305", "广东省深圳市南山区", "粤海街道"),
    ("510107", "四川省成都市武侯区", "浆洗街街道"),
    ("330106", "浙江省杭州市西湖区", "文新街道"),
    ("420106", "湖北省武汉市武昌区", "中南路街道"),
)
STREETS = ("人民路", "解放路", "中山路", "建设路", "和平街", "新华路", "长江路", "文化路")
PINYIN = ("WANG", "LI", "ZHANG", "LIU", "CHEN", "YANG", "HUANG", "ZHAO", "WU", "ZHOU", "XU", "SUN", "MA", "ZHU", "HU", "GUO", "LIN", "LUO", "SONG", "TANG")
SYLLABLES = ("WEI", "FANG", "NA", "XIU", "YING", "MIN", "JING", "LI", "QIANG", "LEI", "JUN", "YANG", "YONG", "YAN", "JIE", "JUAN", "TAO", "MING", "CHAO", "XIA", "PING", "GANG", "HAO", "RAN", "YU", "XUAN")


@dataclass(frozen=True)
class GeneratedDocument:
    kind: str
    truth: dict[str, str]  # field -> the value a perfect reading gives
    valid: bool  # whether its check characters / digits are right
    image: np.ndarray = field(repr=False)  # BGR photo


def _font(size: int, mono: bool = False):
    from PIL import ImageFont

    if not FONT.is_file():
        raise FileNotFoundError(f"{FONT} is missing: apt-get install fonts-wqy-microhei")
    return ImageFont.truetype(str(FONT), size, index=1 if mono else 0)


def _background(width: int, height: int, rng: random.Random, tint: tuple[int, int, int]) -> np.ndarray:
    base = np.array(tint, np.float32) + [rng.randint(-10, 10) for _ in range(3)]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    pattern = 6 * np.sin(xx / 11.0 + 5 * np.sin(yy / 41.0)) + 4 * np.sin(yy / 9.0 + 3 * np.sin(xx / 57.0))
    return np.clip(base + pattern[..., None], 0, 255).astype(np.uint8)


def _draw(card: np.ndarray, texts: list[tuple[tuple[int, int], str, int, tuple[int, int, int], bool]]) -> np.ndarray:
    """Text set with Pillow on a BGR array: ((x, y), text, size, BGR colour, monospaced)."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(card[:, :, ::-1].copy())
    draw = ImageDraw.Draw(image)
    for (x, y), text, size, colour, mono in texts:
        draw.text((x, y), text, font=_font(size, mono), fill=colour[::-1])
    return np.asarray(image)[:, :, ::-1].copy()


def _person(rng: random.Random, today: dt.date) -> tuple[str, str, bool, dt.date]:
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    latin = rng.choice(PINYIN) + "<<" + "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((1, 2))))
    birth = today - dt.timedelta(days=rng.randint(18 * 365, 75 * 365))
    return name, latin, rng.random() < 0.5, birth


def _spoilt(number: str, rng: random.Random) -> str:
    """The same number with its last character replaced by a wrong one."""
    return number[:-1] + rng.choice([c for c in "0123456789X" if c != number[-1]])


def _place_portrait(card: np.ndarray, portrait: np.ndarray | None, at: tuple[int, int], size: tuple[int, int], nrng: np.random.Generator) -> None:
    import cv2

    if portrait is None:
        return
    x, y = at
    printed = _as_printed(cv2.resize(portrait, size, interpolation=cv2.INTER_AREA), nrng)
    card[y : y + size[1], x : x + size[0]] = printed


def resident_front(rng: random.Random, nrng: np.random.Generator, portrait: np.ndarray | None, today: dt.date, bad_checksum: bool) -> tuple[np.ndarray, dict[str, str], bool]:
    name, _, male, birth = _person(rng, today)
    region, city, street_area = rng.choice(PLACES)
    number = resident_card.make_number(region, birth, rng.randint(0, 999), male)
    if bad_checksum:
        number = _spoilt(number, rng)
    address = f"{city}{street_area}{rng.choice(STREETS)}{rng.randint(1, 300)}号"
    ethnicity = rng.choice(ETHNICITIES)
    card = _background(1012, 638, rng, (225, 232, 238))
    label, value = (80, 110, 150), (20, 20, 20)
    lines = [((60, 60), "姓名", 30, label, False), ((170, 54), name, 40, value, False),
             ((60, 140), "性别", 30, label, False), ((170, 136), "男" if male else "女", 34, value, False),
             ((300, 140), "民族", 30, label, False), ((410, 136), ethnicity, 34, value, False),
             ((60, 220), "出生", 30, label, False), ((170, 216), f"{birth.year}年{birth.month}月{birth.day}日", 34, value, False),
             ((60, 300), "住址", 30, label, False)]
    split = rng.randint(9, 12)
    for row, part in enumerate((address[:split], address[split:])):
        lines.append(((170, 296 + 50 * row), part, 32, value, False))
    lines += [((60, 520), "公民身份号码", 30, label, False), ((330, 514), number, 40, value, True)]
    card = _draw(card, lines)
    _place_portrait(card, portrait, (690, 90), (270, 335), nrng)
    truth = {"name": name, "sex": "M" if male else "F", "ethnicity": ethnicity, "date_of_birth": birth.isoformat(), "address": address, "id_number": number}
    return card, truth, not bad_checksum


def resident_back(rng: random.Random, today: dt.date, long_term: bool) -> tuple[np.ndarray, dict[str, str], bool]:
    _, city, _ = rng.choice(PLACES)
    authority = rng.choice((f"{city[:-3]}公安局{city[-3:]}分局", f"{city[:-3]}公安局"))
    start = today - dt.timedelta(days=rng.randint(30, 9 * 365))
    until = "长期" if long_term else f"{start.year + rng.choice((10, 20))}.{start.month:02d}.{start.day:02d}"
    card = _background(1012, 638, rng, (220, 228, 236))
    card = _draw(card, [
        ((330, 90), "中华人民共和国", 52, (40, 40, 160), False), ((330, 180), "居民身份证", 64, (40, 40, 160), False),
        ((120, 430), "签发机关", 30, (80, 110, 150), False), ((300, 426), authority, 34, (20, 20, 20), False),
        ((120, 510), "有效期限", 30, (80, 110, 150), False), ((300, 506), f"{start:%Y.%m.%d}-{until}", 34, (20, 20, 20), True),
    ])
    expiry = "long-term" if long_term else until.replace(".", "-")
    return card, {"issuing_authority": authority, "valid_from": start.isoformat(), "date_of_expiry": expiry}, True


def mrz_document(kind: str, rng: random.Random, nrng: np.random.Generator, portrait: np.ndarray | None, today: dt.date, bad_checksum: bool) -> tuple[np.ndarray, dict[str, str], bool]:
    _, latin, male, birth = _person(rng, today)
    surname, given = latin.split("<<")
    expiry = today + dt.timedelta(days=rng.randint(-400, 9 * 365))
    number = rng.choice("EGKP") + "".join(rng.choice("0123456789") for _ in range(8))
    state = rng.choice(("CHN", "UTO", "DEU", "FRA"))
    sex = "M" if male else "F"
    if kind == "td3_mrz":
        lines = list(mrz.td3_lines("P", state, surname, given, number, state, f"{birth:%y%m%d}", sex, f"{expiry:%y%m%d}"))
        width, height, size, top = 1250, 880, 37, 700
    else:
        lines = list(mrz.td1_lines("ID", state, number, f"{birth:%y%m%d}", sex, f"{expiry:%y%m%d}", state, surname, given))
        width, height, size, top = 1012, 638, 40, 450
    if bad_checksum:  # the document number's check digit
        at = 9 if kind == "td3_mrz" else 14
        row = 1 if kind == "td3_mrz" else 0
        wrong = rng.choice([c for c in "0123456789" if c != lines[row][at]])
        lines[row] = lines[row][:at] + wrong + lines[row][at + 1 :]
    card = _background(width, height, rng, (215, 225, 230))
    title = "PASSPORT 护照" if kind == "td3_mrz" else "IDENTITY CARD"
    visual = [((60, 40), title, 44, (120, 60, 30), False), ((420, 150), f"Surname  {surname}", 32, (30, 30, 30), False),
              ((420, 210), f"Given names  {given}", 32, (30, 30, 30), False), ((420, 270), f"Document No.  {number}", 32, (30, 30, 30), False)]
    card = _draw(card, visual + [((50, top + i * (size + 14)), line, size, (20, 20, 20), True) for i, line in enumerate(lines)])
    _place_portrait(card, portrait, (60, 130), (300, 370) if kind == "td3_mrz" else (260, 300), nrng)
    truth = {"document_number": number, "name": f"{surname} {given}", "date_of_birth": birth.isoformat(), "sex": sex,
             "date_of_expiry": expiry.isoformat(), "nationality": state}
    return card, truth, not bad_checksum


def make_document(kind: str, seed: int, portrait: np.ndarray | None = None, today: dt.date | None = None,
                  bad_checksum: bool = False, style: CardStyle | None = None) -> GeneratedDocument:
    """One photographed document, deterministic for a seed. `style` None: the default damage."""
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    today = today or dt.date.today()
    if kind == "cn_resident_card_front":
        card, truth, valid = resident_front(rng, nrng, portrait, today, bad_checksum)
    elif kind == "cn_resident_card_back":
        card, truth, valid = resident_back(rng, today, long_term=rng.random() < 0.15)
    elif kind in ("td3_mrz", "td1_mrz"):
        card, truth, valid = mrz_document(kind, rng, nrng, portrait, today, bad_checksum)
    else:
        raise ValueError(f"unknown document kind {kind!r}; one of {', '.join(KINDS)}")
    return GeneratedDocument(kind, truth, valid, photographed(card, rng, nrng, style or DOCUMENT_STYLE))
