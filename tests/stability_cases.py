"""Functions written the naive way: symgrad must compute them (and their derivatives) stably."""

import numpy as np


def softplus(x):
    return np.log(1 + np.exp(x))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_ratio(x):
    return np.exp(x) / (1 + np.exp(x))


def log_one_plus(x):
    return np.log(1 + x)


def exp_minus_one(x):
    return np.exp(x) - 1


def norm2(x, y):
    return np.sqrt(x * x + y * y)


def log_sum_exp(x):
    return np.log(np.sum(np.exp(x)))
