"""The paper's numbers (Szegedy et al., 2014, Tables 1-4), to print beside ours."""

from __future__ import annotations

# model -> (train error %, test error %, average minimal distortion)
TABLE1 = {
    "FC10(1e-4)": (6.7, 7.4, 0.062),
    "FC10(1e-2)": (10.0, 9.4, 0.1),
    "FC10(1)": (21.2, 20.0, 0.14),
    "FC100-100-10": (0.0, 1.64, 0.058),
    "FC200-200-10": (0.0, 1.54, 0.065),
    "AE400-10": (0.57, 1.9, 0.086),
}
TABLE1_MODELS = tuple(TABLE1)

# row (examples made for / noise) -> error % on each TABLE1_MODELS column, then av. distortion
TABLE2 = {
    "FC10(1e-4)": ((100, 11.7, 22.7, 2, 3.9, 2.7), 0.062),
    "FC10(1e-2)": ((87.1, 100, 35.2, 35.9, 27.3, 9.8), 0.1),
    "FC10(1)": ((71.9, 76.2, 100, 48.1, 47, 34.4), 0.14),
    "FC100-100-10": ((28.9, 13.7, 21.1, 100, 6.6, 2), 0.058),
    "FC200-200-10": ((38.2, 14, 23.8, 20.3, 100, 2.7), 0.065),
    "AE400-10": ((23.4, 16, 24.8, 9.4, 6.6, 100), 0.086),
    "Gaussian noise, stddev=0.1": ((5.0, 10.1, 18.3, 0, 0, 0.8), 0.1),
    "Gaussian noise, stddev=0.3": ((15.6, 11.3, 22.7, 5, 4.3, 3.1), 0.3),
}

# model -> (error on P1 %, error on P2 %, test error %, min av. distortion)
TABLE3 = {
    "FC100-100-10 (P1)": (0.0, 2.4, 2.0, 0.062),
    "FC123-456-10 (P1)": (0.0, 2.5, 2.1, 0.059),
    "FC100-100-10' (P2)": (2.3, 0.0, 2.1, 0.058),
}
TABLE3_MODELS = tuple(TABLE3)

# row (examples made for / controls) -> error % on each TABLE3_MODELS column, then av. distortion
TABLE4 = {
    "FC100-100-10 (P1)": ((100, 26.2, 5.9), 0.062),
    "FC123-456-10 (P1)": ((6.25, 100, 5.1), 0.059),
    "FC100-100-10' (P2)": ((8.2, 8.2, 100), 0.058),
    "Gaussian noise, stddev=0.06": ((2.2, 2.6, 2.4), 0.06),
    "FC100-100-10 (P1) amplified to stddev 0.1": ((100, 98, 43), 0.1),
    "FC123-456-10 (P1) amplified to stddev 0.1": ((96, 100, 22), 0.1),
    "FC100-100-10' (P2) amplified to stddev 0.1": ((27, 50, 100), 0.1),
    "Gaussian noise, stddev=0.1": ((2.6, 2.8, 2.7), 0.1),
}

# Table 5 (AlexNet): layer -> (size, stride or None, upper bound)
TABLE5 = {
    "Conv. 1": ("3x11x11x96", 4, 2.75),
    "Conv. 2": ("96x5x5x256", 1, 10.0),
    "Conv. 3": ("256x3x3x384", 1, 7.0),
    "Conv. 4": ("384x3x3x384", 1, 7.5),
    "Conv. 5": ("384x3x3x256", 1, 11.0),
    "FC. 1": ("9216x4096", None, 3.12),
    "FC. 2": ("4096x4096", None, 4.0),
    "FC. 3": ("4096x1000", None, 4.0),
}

# Section 4.2, FC100-100-10 -> test error %: weight decay alone, "carefully applied" dropout (about),
# a pool of adversarial examples (an upper bound: "below 1.2%"); none given for the hidden-layer pools
SECTION42 = {"weight decay": 1.6, "dropout": 1.3, "input pool": 1.2}
