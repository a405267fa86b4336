"""The stratified estimator against Olofsson et al. 2014's worked example, and allocation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.estimate import stratified_estimate
from pipeline.sampling import allocate

# Olofsson et al. 2014, section 5 (Tables 8-9): four map classes, strata = map classes,
# Landsat pixels of 30 m (0.09 ha). Rows: map class; columns: reference class. (The
# table is often quoted transposed, reference by rows: the row sums here are the
# allocated sample sizes 75, 75, 165, 325, n = 640.)
CLASSES = ("deforestation", "forest_gain", "stable_forest", "stable_non_forest")
MAPPED_PIXELS = (200_000, 150_000, 3_200_000, 6_450_000)
ERROR_MATRIX = np.array(
    [
        [66, 0, 5, 4],
        [0, 55, 8, 12],
        [1, 0, 153, 11],
        [2, 1, 9, 313],
    ]
)
PIXEL_M2 = 900.0
HA = 1e4


def _olofsson_sample() -> pd.DataFrame:
    rows = [
        (m, m, r)
        for i, m in enumerate(CLASSES)
        for j, r in enumerate(CLASSES)
        for _ in range(ERROR_MATRIX[i, j])
    ]
    return pd.DataFrame(rows, columns=["stratum", "map_class", "reference"])


@pytest.fixture(scope="module")
def olofsson() -> dict:
    return stratified_estimate(
        _olofsson_sample(),
        dict(zip(CLASSES, MAPPED_PIXELS, strict=True)),
        classes=CLASSES,
        pixel_area_m2=PIXEL_M2,
    )


def _closed_form() -> dict[str, np.ndarray]:
    """Olofsson et al. 2014's own equations, written out independently of the module."""
    n = ERROR_MATRIX.astype(float)
    n_i = n.sum(axis=1)
    w = np.array(MAPPED_PIXELS, float) / sum(MAPPED_PIXELS)
    p = w[:, None] * n / n_i[:, None]  # eq. 4: estimated cell proportions
    p_k = p.sum(axis=0)  # eq. 9: area proportion of each reference class
    se_p = np.sqrt(((w[:, None] ** 2) * (n / n_i[:, None]) * (1 - n / n_i[:, None])
                    / (n_i[:, None] - 1)).sum(axis=0))  # fmt: skip  # eq. 10
    ua = np.diag(p) / p.sum(axis=1)  # eq. 2
    pa = np.diag(p) / p_k  # eq. 3
    oa = np.trace(p)  # eq. 1
    var_ua = ua * (1 - ua) / (n_i - 1)  # eq. 6
    var_oa = (w**2 * ua * (1 - ua) / (n_i - 1)).sum()  # eq. 5
    big_n = np.array(MAPPED_PIXELS, float)
    n_hat_j = (big_n[:, None] / n_i[:, None] * n).sum(axis=0)  # estimated pixels per ref class
    var_pa = np.empty(len(CLASSES))
    for j in range(len(CLASSES)):  # eq. 7
        others = sum(
            big_n[i] ** 2 * n[i, j] / n_i[i] * (1 - n[i, j] / n_i[i]) / (n_i[i] - 1)
            for i in range(len(CLASSES))
            if i != j
        )
        var_pa[j] = (
            big_n[j] ** 2 * (1 - pa[j]) ** 2 * ua[j] * (1 - ua[j]) / (n_i[j] - 1)
            + pa[j] ** 2 * others
        ) / n_hat_j[j] ** 2
    return {
        "p_k": p_k, "se_p": se_p, "ua": ua, "se_ua": np.sqrt(var_ua), "pa": pa,
        "se_pa": np.sqrt(var_pa), "oa": np.array(oa), "se_oa": np.sqrt(var_oa),
    }  # fmt: skip


def test_stratified_estimate__olofsson_table_8_published_areas(olofsson: dict) -> None:
    # Published in Olofsson et al. 2014 (section 5.2): area +/- 95 % half-width, in ha.
    published = {
        "deforestation": (21_158, 6_158),
        "forest_gain": (11_686, 3_756),
        "stable_forest": (285_770, 15_510),
        "stable_non_forest": (581_386, 16_282),
    }
    for k, (area_ha, half_ha) in published.items():
        area = olofsson["classes"][k]["area_m2"]
        assert area["value"] / HA == pytest.approx(area_ha, abs=1)
        assert (area["ci95_high"] - area["value"]) / HA == pytest.approx(half_ha, abs=2)
        assert (area["value"] - area["ci95_low"]) / HA == pytest.approx(half_ha, abs=2)
    classes = olofsson["classes"]
    # User's 0.88 / 0.73 / 0.93 / 0.96, producer's 0.75 / 0.85 / 0.93 / 0.96, overall 0.95.
    assert [round(classes[k]["users_accuracy"]["value"], 2) for k in CLASSES] == [
        0.88, 0.73, 0.93, 0.96]  # fmt: skip
    assert [round(classes[k]["producers_accuracy"]["value"], 2) for k in CLASSES] == [
        0.75, 0.85, 0.93, 0.96]  # fmt: skip
    assert round(olofsson["overall_accuracy"]["value"], 2) == 0.95
    assert olofsson["total_area_m2"] / HA == pytest.approx(900_000)


def test_stratified_estimate__olofsson_standard_errors_match_closed_form(olofsson: dict) -> None:
    ref = _closed_form()
    for j, k in enumerate(CLASSES):
        c = olofsson["classes"][k]
        assert c["proportion"]["value"] == pytest.approx(ref["p_k"][j], abs=1e-6)
        assert c["proportion"]["se"] == pytest.approx(ref["se_p"][j], abs=1e-6)
        assert c["users_accuracy"]["value"] == pytest.approx(ref["ua"][j], abs=1e-4)
        assert c["users_accuracy"]["se"] == pytest.approx(ref["se_ua"][j], abs=1e-4)
        assert c["producers_accuracy"]["value"] == pytest.approx(ref["pa"][j], abs=1e-4)
        assert c["producers_accuracy"]["se"] == pytest.approx(ref["se_pa"][j], abs=1e-4)
    assert olofsson["overall_accuracy"]["value"] == pytest.approx(float(ref["oa"]), abs=1e-4)
    assert olofsson["overall_accuracy"]["se"] == pytest.approx(float(ref["se_oa"]), abs=1e-4)
    # Deforestation by hand: p = 0.02*66/75 + 0.32*1/165 + 0.645*2/325 = 0.023509,
    # V = 0.02^2*.88*.12/74 + 0.32^2*(1/165)(164/165)/164 + 0.645^2*(2/325)(323/325)/324.
    defo = olofsson["classes"]["deforestation"]["proportion"]
    assert defo["value"] == pytest.approx(0.023509, abs=1e-6)
    assert defo["se"] == pytest.approx(0.0034907, abs=1e-6)
    assert olofsson["classes"]["deforestation"]["mapped_area_m2"] == 200_000 * PIXEL_M2


def test_stratified_estimate__strata_finer_than_map_classes_give_the_same_figures() -> None:
    # Split the deforestation stratum in two halves with identical sample make-up: the
    # general (Stehman 2014) estimator must return Olofsson's figures.
    sample = _olofsson_sample()
    first = sample[sample["stratum"] == "deforestation"]
    doubled = pd.concat(
        [sample[sample["stratum"] != "deforestation"],
         first.assign(stratum="defo_a"), first.assign(stratum="defo_b")]
    )  # fmt: skip
    sizes = dict(zip(CLASSES, MAPPED_PIXELS, strict=True))
    sizes.pop("deforestation")
    split = stratified_estimate(
        doubled, {"defo_a": 100_000, "defo_b": 100_000, **sizes},
        classes=CLASSES, pixel_area_m2=PIXEL_M2,
    )  # fmt: skip
    whole = stratified_estimate(
        sample, dict(zip(CLASSES, MAPPED_PIXELS, strict=True)), classes=CLASSES,
        pixel_area_m2=PIXEL_M2,
    )  # fmt: skip
    for k in CLASSES:
        assert split["classes"][k]["area_m2"]["value"] == pytest.approx(
            whole["classes"][k]["area_m2"]["value"], rel=1e-9
        )
        assert split["classes"][k]["users_accuracy"]["value"] == pytest.approx(
            whole["classes"][k]["users_accuracy"]["value"], abs=1e-4
        )


def test_allocate__rare_strata_get_fifty_and_the_rest_goes_by_area() -> None:
    counts = {"excavation": 300, "buffer": 900, "restored": 2_000, "site": 8_000, "rest": 89_000}
    alloc = allocate(counts, 400)
    assert alloc == {"excavation": 50, "buffer": 50, "restored": 50, "site": 50, "rest": 200}
    alloc = allocate(counts, 1_000)
    assert alloc["excavation"] == alloc["buffer"] == alloc["restored"] == 50
    assert alloc["site"] == 70 and alloc["rest"] == 780  # 850 x 8,000 / 97,000 = 70.1
    assert sum(alloc.values()) == 1_000


def test_allocate__small_stratum_gives_all_its_pixels_and_empty_gets_none() -> None:
    alloc = allocate({"excavation": 12, "buffer": 0, "rest": 50_000}, 200)
    assert alloc == {"excavation": 12, "buffer": 0, "rest": 188}


def test_allocate__too_few_points_is_an_input_error() -> None:
    with pytest.raises(InputError, match="too small"):
        allocate({"a": 10, "b": 10, "c": 10}, 5)
