"""Labels of the audit figures (sample-based estimate, enforcement record) in zh-CN and en.

Kept beside ``i18n`` (which holds the rest of the report's labels) so the estimate and
the enforcement record can be read on their own: the workbook, the report sections.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.report import i18n

AUDIT_TEXT: dict[str, dict] = {
    "zh-CN": {
        "workbook_title": "露天矿山修复治理进度表",
        "sheet_city": "全市",
        "sheet_estimate": "抽样估算",
        "estimate": "抽样面积估算",
        "estimate_title": "基于分层随机抽样的面积估算（95% 置信区间）",
        "estimate_intro": (
            "遥感图斑面积含漏分和错分误差。按分层随机抽样（Olofsson 等，2014）对样本点逐一"
            "目视判读，估算各类面积及其 95% 置信区间，并给出用户精度和制图精度。"
        ),
        "no_estimate": "尚无抽样估算：运行 minewatch sample 并判读样本后运行 minewatch estimate。",
        "class": "类别",
        "mapped_mu": "图斑面积（亩）",
        "estimated_mu": "估算面积（亩）",
        "se_mu": "标准误（亩）",
        "ci95_low": "95% 置信下限（亩）",
        "ci95_high": "95% 置信上限（亩）",
        "ci95": "95% 置信区间（亩）",
        "users": "用户精度",
        "users_se": "用户精度标准误",
        "producers": "制图精度",
        "producers_se": "制图精度标准误",
        "overall": "总体精度",
        "sample_size": "样本量",
        "sample_run": "抽样所依据的运行",
        "restored_estimate": "修复面积估算（亩）",
        "classes": {"excavation": "新增开挖", "restored": "已修复", "other": "其他"},
        "enforcement": "执法核查记录",
        "enforcement_intro": (
            "各县（市、区）对下发图斑的核查反馈：属实、误报、待核查，以及由此得出的查准率。"
        ),
        "no_enforcement": "尚无下发图斑。",
        "county": "县（市、区）",
        "violation": "违法类型",
        "issued": "下发",
        "confirmed": "属实",
        "false_alarm": "误报",
        "open": "待核查",
        "precision": "查准率",
        "precision_note": "查准率 = 属实 ÷（属实 + 误报）；属实含已整改（resolved）。",
        "total": "合计",
    },
    "en": {
        "workbook_title": "Open-pit mine restoration progress",
        "sheet_city": "City",
        "sheet_estimate": "Estimate",
        "estimate": "Sample-based area estimate",
        "estimate_title": "Area estimated from a stratified random sample (95 % confidence)",
        "estimate_intro": (
            "Mapped areas carry omission and commission errors. From a stratified random "
            "sample labelled by eye (Olofsson et al. 2014) each class's area is estimated "
            "with a 95 % confidence interval, with the user's and producer's accuracy."
        ),
        "no_estimate": (
            "No sample-based estimate yet: run minewatch sample, label the points, then "
            "minewatch estimate."
        ),
        "class": "Class",
        "mapped_mu": "Mapped (mu)",
        "estimated_mu": "Estimated (mu)",
        "se_mu": "Standard error (mu)",
        "ci95_low": "95 % CI low (mu)",
        "ci95_high": "95 % CI high (mu)",
        "ci95": "95 % confidence interval (mu)",
        "users": "User's accuracy",
        "users_se": "User's accuracy SE",
        "producers": "Producer's accuracy",
        "producers_se": "Producer's accuracy SE",
        "overall": "Overall accuracy",
        "sample_size": "Sample size",
        "sample_run": "Run the sample was drawn from",
        "restored_estimate": "Restored area, estimated (mu)",
        "classes": {"excavation": "New excavation", "restored": "Restored", "other": "Other"},
        "enforcement": "Enforcement record",
        "enforcement_intro": (
            "What the county teams answered for the flags they received: confirmed, false "
            "alarm, still open, and the precision that follows."
        ),
        "no_enforcement": "No flag issued yet.",
        "county": "County",
        "violation": "Violation",
        "issued": "Issued",
        "confirmed": "Confirmed",
        "false_alarm": "False alarm",
        "open": "Open",
        "precision": "Precision",
        "precision_note": (
            "Precision = confirmed / (confirmed + false alarms); confirmed includes resolved."
        ),
        "total": "Total",
    },
}


def audit_text(language: str) -> Mapping:
    """The audit labels of ``language``."""
    return AUDIT_TEXT[i18n.check_language(language)]
