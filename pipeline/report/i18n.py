"""Every human-readable label of the report, in Chinese (``zh-CN``) and English (``en``).

The Chinese terms are the official ones of the city's inspection report (domain.md):
持证露天矿山, 责任主体灭失矿山, 非法无证采矿点, 采矿废石废渣, 修复面积(亩), 修复率.
English labels are translations for analysts; in the English page the official Chinese
term of each category is shown beside it so both pages can be read against the source report.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.errors import InputError

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"

# Site categories (schema.CATEGORIES).
CATEGORY_NAMES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "licensed": "持证露天矿山",
        "orphaned": "责任主体灭失矿山",
        "illegal": "非法无证采矿点",
        "waste_pile": "采矿废石废渣",
    },
    "en": {
        "licensed": "Licensed open-pit mines",
        "orphaned": "Orphaned mines (no responsible party)",
        "illegal": "Illegal unlicensed mining points",
        "waste_pile": "Mining waste rock and slag",
    },
}

# Violations (schema.VIOLATIONS).
VIOLATION_NAMES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "outside_permit": "越界开采",
        "illegal_site": "非法无证采矿点复采",
        "suspended_site": "停产整治期间开采",
        "restored_land": "已修复土地再次开挖",
        "no_mining_zone": "三区两线/禁采区内开采",
        "unregistered": "未登记地点新增开挖",
        "within_permit": "采矿许可范围内开采",
    },
    "en": {
        "outside_permit": "Mining outside the permit boundary",
        "illegal_site": "Digging at a closed illegal mining point",
        "suspended_site": "Mining during production suspension",
        "restored_land": "Digging on restored land",
        "no_mining_zone": "Mining in a no-mining zone (three zones, two lines)",
        "unregistered": "New excavation at an unregistered place",
        "within_permit": "Mining within the permit boundary",
    },
}

# Recovery classes (schema.RECOVERY_CLASSES).
RECOVERY_CLASS_NAMES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "unrestored": "未修复",
        "revegetating": "植被恢复中",
        "restored": "已修复",
        "regressed": "修复后退化",
        "disturbed": "新增扰动",
    },
    "en": {
        "unrestored": "Unrestored",
        "revegetating": "Revegetating",
        "restored": "Restored",
        "regressed": "Regressed",
        "disturbed": "Disturbed",
    },
}

# Restoration targets (宜林则林、宜耕则耕、宜草则草、宜景则景).
TARGET_NAMES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "forest": "宜林（林地）",
        "farmland": "宜耕（耕地）",
        "grassland": "宜草（草地）",
        "landscape": "宜景（景观）",
    },
    "en": {
        "forest": "Forest",
        "farmland": "Farmland",
        "grassland": "Grassland",
        "landscape": "Landscape",
    },
}

# What the plan says a site is doing (schema.STATUSES).
STATUS_NAMES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "producing": "生产",
        "suspended": "停产整治",
        "closed": "关闭取缔",
        "restoring": "修复治理",
    },
    "en": {
        "producing": "Producing",
        "suspended": "Suspended",
        "closed": "Closed",
        "restoring": "Restoring",
    },
}

# Enforcement answers kept by the flag ledger (schema.ENFORCEMENT_STATUSES).
ENFORCEMENT_NAMES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "new": "新发现",
        "dispatched": "已下发",
        "confirmed": "已核实",
        "false_alarm": "误报",
        "resolved": "已处置",
    },
    "en": {
        "new": "New",
        "dispatched": "Dispatched",
        "confirmed": "Confirmed",
        "false_alarm": "False alarm",
        "resolved": "Resolved",
    },
}

LEVEL_NAMES: dict[str, dict[str, str]] = {
    "zh-CN": {"high": "高", "low": "低"},
    "en": {"high": "High", "low": "Low"},
}

TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "露天矿山修复治理遥感监测报告",
        "nav": "目录",
        "provenance": "数据来源与版本",
        "period": "监测时段",
        "config_hash": "配置哈希",
        "version": "程序版本",
        "model_version": "恢复模型版本",
        "n_items": "影像景数",
        "created": "生成时间",
        "run_id": "运行编号",
        "dates": "个观测日期",
        "progress": "修复治理进度",
        "progress_by_category": "按类别统计",
        "progress_by_county": "按县（市、区）统计",
        "category": "类别",
        "county": "县（市、区）",
        "sites": "数量（处）",
        "sites_restored": "已完成（处）",
        "area_mu": "面积（亩）",
        "restored_area_mu": "修复面积（亩）",
        "rate_by_count": "修复率（按数量，%）",
        "rate_by_area": "修复率（按面积，%）",
        "total": "合计",
        "subtotal": "小计",
        "no_progress": "本次运行没有进度统计。",
        "map": "矿山分布与疑似违法开采图斑",
        "map_caption": (
            "矿山按恢复类别着色（由深到浅：新增扰动、修复后退化、未修复、植被恢复中、已修复）"
            "并加不同填充纹理，黑白打印亦可区分；蓝色粗边框为未结案的疑似违法开采图斑，"
            "灰色虚线为已结案或许可范围内的记录。坐标为经纬度（WGS84，度）。"
        ),
        "map_alt": "矿山分布图",
        "flags": "疑似违法开采图斑",
        "flags_summary": "共 {n} 处图斑，其中 {m} 处需执法核查，{k} 处仅记录在案。",
        "no_flags": "本时段未发现疑似违法开采。",
        "flag_id": "图斑编号",
        "violation": "疑似违法类型",
        "site": "矿山",
        "area_m2": "面积（m²）",
        "first_detected": "首次发现",
        "confirmed": "确认日期",
        "last_seen": "最近观测",
        "level": "可信度",
        "enforcement": "处置状态",
        "note": "备注",
        "not_for_enforcement": "记录在案，不作执法依据",
        "unconfirmed": "未确认",
        "chips": "影像对比（变化前 / 变化后）",
        "before": "变化前",
        "after": "变化后",
        "clear": "无云",
        "no_image": "无可用影像",
        "chips_caption": (
            "影像对比为真彩色影像（红、绿、蓝波段，反射率 0–0.3 线性拉伸），蓝色边框为图斑范围，"
            "比例尺单位为米；左：首次发现前最清晰的一景，右：确认后最清晰的一景。"
        ),
        "trajectories": "图斑 NDVI/BSI 变化曲线",
        "flag_plot_caption": (
            "图斑内晴空像元的中位数：绿色实线 NDVI，红色虚线 BSI（无量纲）；"
            "黑色竖线为首次发现日期。"
        ),
        "site_table": "矿山明细",
        "filter": "筛选",
        "filter_placeholder": "输入编号、名称、县或类别",
        "sort_hint": "点击表头可排序。",
        "trajectory": "NDVI/BSI 变化曲线",
        "trajectory_caption": (
            "曲线：绿色实线为植被指数 NDVI，红色虚线为裸土指数 BSI（无量纲）；"
            "黑色竖线为修复开工日期；黑色点线为修复方向要求的生长季 NDVI 峰值下限。"
        ),
        "site_id": "矿山编号",
        "name": "名称",
        "status": "计划状态",
        "target": "修复方向",
        "recovery_class": "恢复类别",
        "probability": "概率",
        "vegetated": "植被覆盖",
        "bare": "裸露",
        "water": "水体",
        "meets_target": "达到修复目标",
        "assessed_until": "评估截至",
        "open_flags": "待核查图斑",
        "yes": "是",
        "no": "否",
        "unknown": "未知",
        "no_sites": "没有矿山数据。",
        "footer": "由 MineWatch {version} 根据本次运行的输出表生成。",
    },
    "en": {
        "title": "Open-pit mine restoration monitoring report",
        "nav": "Contents",
        "provenance": "Provenance",
        "period": "Period covered",
        "config_hash": "Config hash",
        "version": "Package version",
        "model_version": "Recovery model version",
        "n_items": "Scenes used",
        "created": "Created",
        "run_id": "Run",
        "dates": "acquisition dates",
        "progress": "Restoration progress",
        "progress_by_category": "By category",
        "progress_by_county": "By county",
        "category": "Category",
        "county": "County",
        "sites": "Sites",
        "sites_restored": "Sites finished",
        "area_mu": "Area (mu)",
        "restored_area_mu": "Area restored (mu)",
        "rate_by_count": "Restoration rate by count (%)",
        "rate_by_area": "Restoration rate by area (%)",
        "total": "Total",
        "subtotal": "Subtotal",
        "no_progress": "This run has no progress figures.",
        "map": "Sites and suspected illegal excavation",
        "map_caption": (
            "Sites are filled by recovery class, dark to light: disturbed, regressed, unrestored, "
            "revegetating, restored, each with its own hatching (readable in grey print); "
            "thick blue outlines "
            "are open flags of suspected illegal excavation, grey dashed outlines are closed "
            "flags or digging within a permit. Axes in degrees of longitude and latitude (WGS84)."
        ),
        "map_alt": "Map of sites",
        "flags": "Suspected illegal excavation (flags)",
        "flags_summary": "{n} flags: {m} for enforcement, {k} recorded only.",
        "no_flags": "No suspected illegal excavation in this period.",
        "flag_id": "Flag ID",
        "violation": "Suspected violation",
        "site": "Site",
        "area_m2": "Area (m²)",
        "first_detected": "First detected",
        "confirmed": "Confirmed",
        "last_seen": "Last seen",
        "level": "Confidence",
        "enforcement": "Enforcement status",
        "note": "Note",
        "not_for_enforcement": "Recorded, not for enforcement",
        "unconfirmed": "unconfirmed",
        "chips": "Images (before / after)",
        "before": "Before",
        "after": "After",
        "clear": "clear",
        "no_image": "no usable image",
        "chips_caption": (
            "Images: true colour (red, green, blue; reflectance 0-0.3 stretched linearly), the "
            "flag outlined in blue, scale bar in metres; left: clearest look before first "
            "detection, right: clearest look after confirmation."
        ),
        "trajectories": "NDVI/BSI of each flag",
        "flag_plot_caption": (
            "Median over the flag's clear pixels: green solid line NDVI, vermillion dashed "
            "line BSI (unitless); black vertical line: first detected."
        ),
        "site_table": "Sites",
        "filter": "Filter",
        "filter_placeholder": "id, name, county or category",
        "sort_hint": "Click a column header to sort.",
        "trajectory": "NDVI/BSI trajectory",
        "trajectory_caption": (
            "Charts: green solid line NDVI (vegetation index), vermillion dashed line BSI "
            "(bare soil index), both unitless; black vertical line: restoration start; black "
            "dotted line: the season-peak NDVI the restoration target requires."
        ),
        "site_id": "Site ID",
        "name": "Name",
        "status": "Planned status",
        "target": "Target",
        "recovery_class": "Recovery class",
        "probability": "Probability",
        "vegetated": "Vegetated",
        "bare": "Bare",
        "water": "Water",
        "meets_target": "Meets target",
        "assessed_until": "Assessed until",
        "open_flags": "Open flags",
        "yes": "yes",
        "no": "no",
        "unknown": "unknown",
        "no_sites": "No sites.",
        "footer": "Generated by MineWatch {version} from this run's output tables.",
    },
}

# Labels drawn inside PNG charts. English unless a CJK font is available (see charts.py).
CHART_TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "lon": "经度（°E）",
        "lat": "纬度（°N）",
        "date": "日期",
        "index": "NDVI / BSI（无量纲）",
        "open_flag": "未结案图斑",
        "closed_flag": "已结案/许可内",
        "no_status": "无评估",
        "no_sites": "无矿山",
        "restoration_start": "修复开工",
        "target": "目标",
    },
    "en": {
        "lon": "Longitude (°E)",
        "lat": "Latitude (°N)",
        "date": "Date",
        "index": "NDVI / BSI (unitless)",
        "open_flag": "Open flag",
        "closed_flag": "Closed / within permit",
        "no_status": "Not assessed",
        "no_sites": "No sites",
        "restoration_start": "Restoration start",
        "target": "target",
    },
}


def check_language(language: str) -> str:
    """Return ``language`` if the report supports it, else raise ``InputError``."""
    if language not in LANGUAGES:
        raise InputError(
            f"unsupported report language {language!r}; use one of {', '.join(LANGUAGES)}",
            field="report.language",
        )
    return language


def text(language: str) -> Mapping[str, str]:
    """The page labels of ``language``."""
    return TEXT[check_language(language)]


def term(vocabulary: Mapping[str, Mapping[str, str]], key: object, language: str) -> str:
    """The name of vocabulary ``key`` in ``language``; unknown keys come back as they are."""
    if key is None or (isinstance(key, float) and key != key):
        return ""
    return vocabulary[check_language(language)].get(str(key), str(key))
