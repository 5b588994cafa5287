"""Unit conversions to ponita's energy unit, meV (forces in meV/Å, positions in Å)."""

# 1 kcal/mol = 4184 J / N_A = 0.0433641 eV = 43.3641 meV; rounded to 43.364, as in the rMD17 literature.
KCAL_PER_MOL_TO_MEV = 43.364

# 1 eV = 1000 meV (exact).
EV_TO_MEV = 1000.0

# Energy units accepted by the loaders, each with its factor to meV.
ENERGY_UNITS_TO_MEV: dict[str, float] = {
    "eV": EV_TO_MEV,
    "meV": 1.0,
    "kcal/mol": KCAL_PER_MOL_TO_MEV,
}
